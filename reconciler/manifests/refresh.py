"""Rewriting only the generated part of a manifest; every byte above the marker stays.

`build --refresh` loads the part below the marker with ruamel.yaml (round trip:
its comments and key order survive), sets what the code now says, and writes
it back under the user's part, which is copied byte for byte.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..errors import ReconcileError

_MARKER = re.compile(r"^###\s*DO NOT EDIT BELOW THIS LINE\s*$", re.MULTILINE)


def split(text: str, display: str) -> tuple[str, str]:
    """(user part up to and including the marker block, generated part)."""
    match = _MARKER.search(text)
    if match is None:
        raise ReconcileError(f"{display}: no `### DO NOT EDIT BELOW THIS LINE` marker; cannot tell the user's part "
                             "from the generated part")
    end = match.end()
    after = text[end:]
    newline = "\r\n" if "\r\n" in text[:end + 2] else "\n"
    # the marker block closes with a `###` line
    closing = re.match(r"(\r?\n)###[ \t]*(?=\r?\n|$)", after)
    if closing:
        end += closing.end()
    if text[end:end + len(newline)] == newline:
        end += len(newline)
    return text[:end], text[end:]


def keep_user_part(existing: str, fresh: str, display: str) -> str:
    """`fresh`'s generated part under `existing`'s user part (for build over an existing manifest)."""
    top, _ = split(existing, display)
    _, bottom = split(fresh, "generated manifest")
    if re.search(r"^infrastructure\s*:", top, re.MULTILINE):
        bottom = _drop_key(bottom, "infrastructure")   # the user keeps an inline infrastructure above
    return top + bottom


def _drop_key(text: str, key: str) -> str:
    return re.sub(rf"^{key}:.*\n(?:[ \-].*\n)*", "", text, flags=re.MULTILINE)


def _yaml() -> YAML:
    y = YAML()  # round trip
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=2, offset=0)
    # write `null` as PyYAML (and so Prefect) does, not ruamel's empty value
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def rewrite_generated(text: str, values: dict[str, Any], display: str) -> str:
    """Set `values` in the generated part (ruamel round trip); the user part is kept byte for byte."""
    top, bottom = split(text, display)
    y = _yaml()
    data = y.load(bottom) if bottom.strip() else None
    if data is None:
        raise ReconcileError(f"{display}: the generated part below the marker is empty")
    changed = False
    for key, value in values.items():
        if data.get(key) != value:
            data[key] = value
            changed = True
    if not changed:
        return text
    out = io.StringIO()
    y.dump(data, out)
    new_bottom = out.getvalue()
    if "\r\n" in text:
        new_bottom = new_bottom.replace("\r\n", "\n").replace("\n", "\r\n")
    return top + new_bottom


def refresh_file(path: Path, values: dict[str, Any], display: str) -> bool:
    """Rewrite the file's generated part; True when it changed."""
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    new = rewrite_generated(text, values, display)
    if new == text:
        return False
    path.write_bytes(new.encode("utf-8"))
    return True
