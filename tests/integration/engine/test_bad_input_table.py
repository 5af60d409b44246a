"""A table of bad manifests against the real server: each is one `error:` line naming file:line, exit 1,
no write request, and no byte that could recolour, hide, split or reorder a line of the output.

Each case is its own directory (the bad file next to a good manifest) and runs `plan -v` and `apply -v`
as real processes. Names the server refuses after other writes (`/` in a deployment or flow name), names
and text that would garble a plan (control bytes, newlines, bidi overrides), schedules that would keep the
server busy, wrong types, and files that are not a manifest at all.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Union

import pytest

from integration.helpers import Server, line_of, manifest, manifest_text, reconcile, write_manifest

Files = dict[str, Union[str, bytes]]
BAD_FILE = "bad-deployment.yaml"
CRON = "    cron: 0 * * * *\n    timezone: UTC\n    day_or: true\n"
# what must never reach stdout or stderr raw: C0 controls but \t and \n, DEL, C1 controls, bidi controls
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Case:
    files: Callable[[str], Files]          # the bad flow's name → the files to write besides the good one
    file: str = BAD_FILE                   # the file the error names (as written to disk)
    needle: str = ""                       # text on the line the error names, in that file
    lines: tuple[int, ...] = field(default=())   # or the lines themselves


def base(flow: str) -> str:
    return manifest_text(manifest(flow, "bad"))


def sub(old: str, new: str, needle: str = "") -> Case:
    """The bad file is the good text with `old` replaced by `new`; the error names `needle`'s line (else new's)."""
    def files(flow: str) -> Files:
        text = base(flow)
        assert old in text, old
        return {BAD_FILE: text.replace(old, new, 1)}
    return Case(files, needle=needle or new.strip("\n").splitlines()[0])


def schedule(body: str, needle: str = "") -> Case:
    return sub(CRON, body, needle)


def whole(content: Union[str, bytes], *lines: int) -> Case:
    return Case(lambda flow: {BAD_FILE: content}, lines=lines or (1,))


def named_file(filename: str, old: str, new: str, needle: str = "") -> Case:
    """A bad manifest in a file whose own name carries characters that must be escaped when printed."""
    def files(flow: str) -> Files:
        return {filename: base(flow).replace(old, new, 1)}
    return Case(files, file=filename, needle=needle or new.strip("\n").splitlines()[0])


def duplicate(flow: str) -> Files:
    text = manifest_text(manifest(flow, "twice"))
    return {"a-deployment.yaml": text, "sub/b-deployment.yaml": text.replace("version: '1'", "version: '2'")}




def flow_named(value: str) -> Case:
    def files(flow: str) -> Files:
        return {BAD_FILE: base(flow).replace(f"flow_name: {flow}\n", f"flow_name: {value}\n", 1)}
    return Case(files, needle=f"flow_name: {value}")


CASES: dict[str, Case] = {
    # deployment names: Prefect's banned characters (the server answers 500 only after other writes)
    "name-slash": sub("name: bad\n", 'name: "a/b"\n'),
    "name-percent": sub("name: bad\n", 'name: "a%b"\n'),
    "name-ampersand": sub("name: bad\n", 'name: "a&b"\n'),
    "name-greater-than": sub("name: bad\n", 'name: "a>b"\n'),
    "name-less-than": sub("name: bad\n", 'name: "<b>"\n'),
    # ... and what would garble a plan line
    "name-empty": sub("name: bad\n", 'name: ""\n'),
    "name-blank": sub("name: bad\n", 'name: "   "\n'),
    "name-leading-space": sub("name: bad\n", 'name: " bad"\n'),
    "name-bel": sub("name: bad\n", 'name: "ding\\a"\n'),
    "name-esc-colour": sub("name: bad\n", 'name: "\\e[31mred\\e[0m"\n'),
    "name-esc-hide": sub("name: bad\n", 'name: "x\\e[8mhidden"\n'),
    "name-newline": sub("name: bad\n", 'name: "two\\nlines"\n'),
    "name-carriage-return": sub("name: bad\n", 'name: "over\\rwrite"\n'),
    "name-tab": sub("name: bad\n", 'name: "a\\tb"\n'),
    "name-nul": sub("name: bad\n", 'name: "a\\0b"\n'),
    "name-del": sub("name: bad\n", 'name: "a\\x7fb"\n'),
    "name-c1-csi": sub("name: bad\n", 'name: "a\\x9b31mb"\n'),
    "name-bidi-override-escaped": sub("name: bad\n", 'name: "\\u202Eevil"\n'),
    "name-bidi-override-raw": sub("name: bad\n", "name: \u202eevil\n"),
    "name-bidi-isolate": sub("name: bad\n", 'name: "a\\u2066b"\n'),
    "name-zero-width-space": sub("name: bad\n", 'name: "a\\u200bb"\n'),
    "name-line-separator": sub("name: bad\n", 'name: "a\\u2028b"\n'),
    "name-null": sub("name: bad\n", "name: null\n"),
    "name-number": sub("name: bad\n", "name: 5\n"),
    "name-list": sub("name: bad\n", "name: [a, b]\n"),
    # flow names
    "flow-slash": flow_named('"team/etl"'),
    "flow-empty": flow_named('""'),
    "flow-esc": flow_named('"etl\\e[2J"'),
    "flow-newline": flow_named('"etl\\nfake: line"'),
    "flow-bidi": flow_named('"etl\\u202e"'),
    "flow-number": flow_named("42"),
    # work queue and pool names
    "queue-slash": sub("work_queue_name: default\n", 'work_queue_name: "a/b"\n'),
    "queue-esc": sub("work_queue_name: default\n", 'work_queue_name: "q\\e[1m"\n'),
    "queue-empty": sub("work_queue_name: default\n", 'work_queue_name: ""\n'),
    "pool-less-than": sub("work_pool_name: null\n", 'work_pool_name: "<pool>"\n'),
    "pool-bidi": sub("work_pool_name: null\n", 'work_pool_name: "pool\\u202d"\n'),
    # tags, descriptions, versions and other text
    "tag-esc": sub("tags:\n- it\n", 'tags:\n- it\n- "\\e[31m"\n', needle='- "\\e[31m"'),
    "tag-newline": sub("tags:\n- it\n", 'tags:\n- "a\\nb"\n', needle='- "a\\nb"'),
    "tag-bidi": sub("tags:\n- it\n", 'tags:\n- "\\u2067x"\n', needle='- "\\u2067x"'),
    "tag-number": sub("tags:\n- it\n", "tags:\n- 1\n", needle="- 1"),
    "tags-mapping": sub("tags:\n- it\n", "tags: {a: 1}\n"),
    "description-esc": sub("description: null\n", 'description: "fine\\e]0;title\\a"\n'),
    "description-bidi": sub("description: null\n", 'description: "ok \\u202e txt.exe"\n'),
    "description-number": sub("description: null\n", "description: [1]\n"),
    "version-esc": sub("version: '1'\n", 'version: "1\\e[2K"\n'),
    "entrypoint-newline": sub("entrypoint: flow.py:main\n", 'entrypoint: "flow.py:main\\nx"\n'),
    "path-bel": sub("path: /opt/flows/it\n", 'path: "/opt/\\a"\n'),
    # parameter and override keys
    "parameter-key-esc": sub("parameters:\n  n: 1\n", 'parameters:\n  "\\e[31mn": 1\n', needle='"\\e[31mn": 1'),
    "parameter-key-newline": sub("parameters:\n  n: 1\n", 'parameters:\n  "n\\nx": 1\n', needle='"n\\nx": 1'),
    "parameter-key-bidi": sub("parameters:\n  n: 1\n", 'parameters:\n  "\\u202en": 1\n', needle='"\\u202en": 1'),
    "parameters-list": sub("parameters:\n  n: 1\n", "parameters:\n- 1\n", needle="parameters:"),
    "parameter-wrong-type": sub("parameters:\n  n: 1\n", "parameters:\n  n: many\n", needle="n: many"),
    "override-key-esc": sub("infra_overrides: {}\n", 'infra_overrides:\n  "env.\\e[8mX": "1"\n',
                            needle='"env.\\e[8mX"'),
    "block-name-esc": sub("  _block_type_slug: process\n",
                          '  _block_type_slug: process\n  _block_document_name: "p\\e[0m"\n  _is_anonymous: false\n',
                          needle="infrastructure:"),
    # schedules that would keep the server busy, or that it would refuse
    "rrule-secondly-bysetpos": schedule("    rrule: FREQ=SECONDLY;BYSETPOS=" + ",".join(map(str, range(1, 367))) + "\n"),
    "rrule-minutely-from-2020": schedule("    rrule: FREQ=MINUTELY\n"),
    "rrule-never-occurs": schedule("    rrule: FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\n"),
    "rrule-bysetpos-list": schedule("    rrule: FREQ=YEARLY;BYSETPOS=" + ",".join(map(str, range(1, 41))) + "\n"),
    "rrule-too-long": schedule("    rrule: FREQ=DAILY;BYHOUR=" + ",".join(["1"] * 3300) + "\n"),
    "rrule-count": schedule("    rrule: FREQ=DAILY;COUNT=3\n"),
    "rrule-garbage": schedule("    rrule: FREQ=SOMETIMES\n"),
    "rrule-number": schedule("    rrule: 5\n"),
    "cron-seconds-field": schedule("    cron: '* * * * * *'\n"),
    "cron-never-fires": schedule("    cron: 0 0 30 2 *\n"),
    "cron-hashed": schedule("    cron: H * * * *\n"),
    "cron-out-of-range": schedule("    cron: 61 * * * *\n"),
    "interval-tiny": schedule("    interval: 0.001\n"),
    "interval-infinite": schedule("    interval: .inf\n"),
    "interval-nan": schedule("    interval: .nan\n"),
    "interval-huge": schedule("    interval: 1.0e+12\n"),
    "interval-text": schedule("    interval: hourly\n"),
    "interval-bool": schedule("    interval: true\n"),
    "timezone-unknown": sub("    timezone: UTC\n", "    timezone: Mars/Olympus_Mons\n"),
    "timezone-esc": sub("    timezone: UTC\n", '    timezone: "UTC\\e[2J"\n'),
    "timezone-number": sub("    timezone: UTC\n", "    timezone: 5\n"),
    "schedule-not-mapping": sub("- schedule:\n" + CRON, "- schedule: 5\n"),
    "schedules-mapping": sub("schedules:\n- schedule:\n" + CRON + "  active: true\n", "schedules: {a: 1}\n"),
    "day-or-text": sub("    day_or: true\n", "    day_or: sometimes\n"),
    "active-text": sub("  active: true\n", "  active: sometimes\n"),
    "anchor-date-text": schedule("    interval: 60\n    anchor_date: next tuesday\n", needle="next tuesday"),
    # not a manifest at all, or one that cannot be read
    "manifest-list": whole("- name: a\n- flow_name: b\n"),
    "manifest-scalar": whole("just a string\n"),
    "empty-file": whole(""),
    "comment-only": whole("# nothing here\n"),
    "invalid-yaml": sub("version: '1'\n", "version: '1': oops\n"),
    "duplicate-key": sub("tags:\n", "version: '2'\ntags:\n", needle="version: '2'"),
    "unknown-key": sub("tags:\n", "tag:\n- typo\ntags:\n", needle="tag:"),
    "duplicate-identity": Case(duplicate, file="sub/b-deployment.yaml", needle="name: twice"),
    # a file whose name must itself be escaped in the one error line
    "file-name-esc": named_file("\x1b[31mred-deployment.yaml", "name: bad\n", 'name: "a/b"\n'),
    "file-name-newline": named_file("two\nlines-deployment.yaml", "    cron: 0 * * * *\n", "    cron: 0 0 30 2 *\n"),
    "file-name-bidi": named_file("\u202eevil-deployment.yaml", "tags:\n- it\n", "tags:\n- 5\n", needle="- 5"),
}


@pytest.fixture
def server(prefect_api_url):
    with Server(prefect_api_url) as srv:
        yield srv


def test_the_table_is_large_enough():
    assert len(CASES) >= 60


def printable_path(path: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in path)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_naming_file_and_line_and_nothing_is_written(
        prefect_api_url, server, tmp_path, unique, case):
    root = tmp_path / "m"
    good_flow = f"it-good-{unique}"
    write_manifest(root, manifest(good_flow, "good-one"))
    files = case.files(f"it-bad-{unique}")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    text = files[case.file]
    text = text.decode("utf-8") if isinstance(text, bytes) else text
    expected = set(case.lines) or {line_of(text, case.needle)}
    source = f"it-table-{unique}"

    with ThreadPoolExecutor(2) as pool:   # independent (nothing is written): run both at once
        runs = list(pool.map(lambda command: reconcile(prefect_api_url, command, root, "--source", source, "-v",
                                                       cwd=tmp_path), ("plan", "apply")))
    for run in runs:
        assert run.returncode == 1, run
        for stream in (run.stdout, run.stderr):
            bad = UNSAFE.search(stream)
            assert bad is None, f"unsafe character {bad.group()!r} in the output:\n{run!r}"
        errors = [m for m in run.messages if m.startswith("error: ")]
        assert len(errors) == 1, run
        where = re.escape(printable_path(f"m/{case.file}"))
        match = re.match(rf"^error: {where}:(\d+):(\d+): \S", errors[0])
        assert match, f"expected m/{case.file!r} in:\n{errors[0]}"
        assert int(match.group(1)) in expected, f"expected line {expected}:\n{errors[0]}\n\n{text}"
        assert run.writes == [], f"bad input led to writes:\n{run}"
    assert server.flow(good_flow) is None
    assert server.inventory(source) is None and server.locks(source) == []
