"""The runner's side of the protocol: workflow commands (`::error file=..::`), $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY.

https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions
"""
from __future__ import annotations

import re
import uuid
from typing import Mapping

from .github_comments import SUMMARY_LIMIT, summary_size, truncate


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **props: str) -> str:
    """A workflow command line, e.g. `::error file=a.yaml,line=3::message`."""
    shown = ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
    return f"::{name}{' ' + shown if shown else ''}::{escape_data(message)}"


def format_output(name: str, value: str) -> str:
    """One $GITHUB_OUTPUT entry; a value with line breaks uses the `name<<DELIMITER` form."""
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    while delimiter in value:  # pragma: no cover - a uuid collision
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def write_outputs(env: Mapping[str, str], outputs: dict[str, str]) -> None:
    target = env.get("GITHUB_OUTPUT")
    for name, value in outputs.items():
        print(f"output {name}={value}")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.writelines(format_output(name, value) for name, value in outputs.items())


def write_summary(env: Mapping[str, str], markdown: str, whole: str = "the step's log") -> None:
    """Append to the step summary; `whole` says where the untruncated text is."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        print("(no GITHUB_STEP_SUMMARY: not running in GitHub Actions; the summary is not written)")
        return
    note = f"> ⚠️ Truncated: GitHub keeps at most 1 MiB of step summary. The whole text is in {whole}."
    with open(target, "a", encoding="utf-8") as f:
        f.write(truncate(markdown, SUMMARY_LIMIT - 1024, note, summary_size) + "\n")


ERROR_LINE = re.compile(r"^error: (?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


def annotations(stderr: str, title: str) -> list[str]:
    """`error: file:line:col: message` lines as error annotations on that file and line."""
    out = []
    for line in stderr.splitlines():
        m = ERROR_LINE.match(line)
        if m:
            out.append(command("error", m["msg"], file=m["file"], line=m["line"], col=m["col"], title=title))
        elif line.startswith("error: "):
            out.append(command("error", line[len("error: "):], title=title))
    return out
