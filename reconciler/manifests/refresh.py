"""Rewriting only the generated part of a manifest; every byte above the marker stays.

`build --refresh` loads the part below the marker with ruamel.yaml (round trip:
its comments and key order survive), sets what the code now says, and writes
it back under the user's part, which is copied byte for byte, but for one value:
a `version:` that `prefect deployment build` generated (the md5 of the flow file,
written when no --version is given) follows the code; a version a person wrote stays.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Optional

from ruamel.yaml import YAML

from ..errors import ReconcileError

_MARKER = re.compile(r"^###\s*DO NOT EDIT BELOW THIS LINE\s*$", re.MULTILINE)
GENERATED = re.compile(r"^[0-9a-f]{32}$")   # Prefect 2: Flow.version defaults to the md5 of the flow file
_VERSION = re.compile(r"^version:([ \t]+)(['\"]?)([^'\"\s#]*)\2([ \t]*(?:#.*)?)$", re.MULTILINE)


def generated_version(value: Any) -> bool:
    """Whether a manifest's `version` was written by `prefect deployment build` (an md5), not by a person."""
    return isinstance(value, str) and GENERATED.match(value) is not None


def with_version(top: str, version: str, force: bool = False) -> str:
    """The user's part with its top-level `version:` set to `version` when it holds a generated value (or when
    `force`d); every other byte stays.  A hand-written version, or none, is left as it is."""
    match = _VERSION.search(top)
    if match is None or match.group(3) == version or not (force or generated_version(match.group(3))):
        return top
    quote = match.group(2)
    if GENERATED.match(version) or re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", version) and \
            version.lower() not in ("null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf"):
        value = f"{quote}{version}{quote}"
    else:
        value = json.dumps(version)   # a JSON string is a YAML string: '1.0' stays text, not a number
    return top[:match.start()] + f"version:{match.group(1)}{value}{match.group(4)}" + top[match.end():]


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


def keep_user_part(existing: str, fresh: str, display: str, version: Optional[str] = None,
                   force_version: bool = False) -> str:
    """`fresh`'s generated part under `existing`'s user part (for build over an existing manifest); a generated
    `version` there becomes `version` (any version does, with `force_version`: --version was given)."""
    top, _ = split(existing, display)
    if version is not None:
        top = with_version(top, version, force_version)
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
    """Set `values` in the generated part (ruamel round trip); the user part is kept byte for byte, but for a
    generated `version` (values' "version": what the code's version now is), which follows the code."""
    values = dict(values)
    version = values.pop("version", None)
    top, bottom = split(text, display)
    new_top = with_version(top, version) if version is not None else top
    y = _yaml()
    data = y.load(bottom) if bottom.strip() else None
    if data is None:
        raise ReconcileError(f"{display}: the generated part below the marker is empty")
    if version is not None and generated_version(data.get("version")) and data.get("version") != version:
        values["version"] = version    # a manifest that keeps its version below the marker
    changed = False
    for key, value in values.items():
        if data.get(key) != value:
            data[key] = value
            changed = True
    if not changed:
        return new_top + bottom
    out = io.StringIO()
    y.dump(data, out)
    new_bottom = out.getvalue()
    if "\r\n" in text:
        new_bottom = new_bottom.replace("\r\n", "\n").replace("\n", "\r\n")
    return new_top + new_bottom


def refresh_file(path: Path, values: dict[str, Any], display: str) -> bool:
    """Rewrite the file's generated part; True when it changed."""
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    new = rewrite_generated(text, values, display)
    if new == text:
        return False
    path.write_bytes(new.encode("utf-8"))
    return True
