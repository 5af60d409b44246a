"""Names and text a manifest sends to Prefect: Prefect's own rules, and stricter where plan output needs it.

Prefect 2.20 refuses `/ % & > <` in flow, deployment, work-queue and work-pool names
(``raise_on_name_with_banned_characters``), but a deployment's name is checked only when the server
reads it back, so the create fails with a 500 *after* the other writes of an apply.  These checks
run before any write.  Stricter than Prefect, for what a plan prints: a name is non-empty, has no
leading or trailing space and no character that does not print (control bytes such as BEL and ESC,
newlines, bidirectional overrides like U+202E, other format and separator characters); tags,
parameter keys and other one-line text carry no control, line-break or bidi-override character;
a description may span lines but carries no other control character and no bidi override.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

PREFECT_BANNED = "/%&><"          # prefect._internal.schemas.validators.BANNED_CHARACTERS
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")   # embeddings, overrides, isolates
LINE_BREAKS = frozenset("\u2028\u2029\x85")


def _first_bad(text: str, allowed: str = "") -> Optional[str]:
    for ch in text:
        if ch in allowed:
            continue
        if ch in BIDI or ch in LINE_BREAKS or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            return ch
    return None


def _describe(ch: str) -> str:
    kind = ("a bidirectional override" if ch in BIDI else "a line break" if ch in LINE_BREAKS or ch in "\r\n"
            else "a control character" if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F else "a character that does not print")
    return f"{kind} ({repr(ch)[1:-1]})"


def name_problem(value: str, what: str) -> Optional[str]:
    """Why `value` cannot be the name of a `what` (flow, deployment, work queue, work pool), or None."""
    if not value.strip():
        return f"a {what} name must not be empty"
    banned = [c for c in PREFECT_BANNED if c in value]
    if banned:
        return (f"a {what} name must not contain {' '.join(repr(c) for c in banned)} (Prefect refuses "
                f"{' '.join(PREFECT_BANNED)} in names): {value!r}")
    odd = next((ch for ch in value if not ch.isprintable()), None)
    if odd is not None:
        return f"a {what} name must not contain {_describe(odd)}: {value!r}"
    if value != value.strip():
        return f"a {what} name must not start or end with a space: {value!r}"
    return None


def text_problem(value: str, what: str, multiline: bool = False) -> Optional[str]:
    """Why `value` cannot be sent as `what`, or None: control characters and bidi overrides never pass."""
    bad = _first_bad(value, "\n\t\r" if multiline else "")
    if bad is None:
        return None
    return f"{what} must not contain {_describe(bad)}: {value[:60]!r}"


NAME_FIELDS = (("flow_name", "flow"), ("name", "deployment"), ("work_queue_name", "work queue"),
               ("work_pool_name", "work pool"))
TEXT_FIELDS = ("version", "path", "entrypoint", "manifest_path")


def problems(spec: Any) -> Iterator[tuple[tuple, str]]:
    """(key path, message) for each name or text in a parsed manifest (a DeploymentFile) that cannot pass."""
    for key, what in NAME_FIELDS:
        value = getattr(spec, key)
        if value is not None:
            why = name_problem(value, what)
            if why:
                yield (key,), why
    if spec.description is not None:
        why = text_problem(spec.description, "a description", multiline=True)
        if why:
            yield ("description",), why
    for key in TEXT_FIELDS:
        value = getattr(spec, key)
        if isinstance(value, str):
            why = text_problem(value, key)
            if why:
                yield (key,), why
    for index, tag in enumerate(spec.tags):
        why = text_problem(tag, "a tag")
        if why:
            yield ("tags", index), why
    for section in ("parameters", "infra_overrides", "job_variables"):
        for key in (getattr(spec, section) or {}):
            why = text_problem(str(key), f"a key of {section}")
            if why:
                yield (section, key), why
    for section in ("infrastructure", "storage"):
        block = getattr(spec, section)
        if block is None:
            continue
        for attr, label in (("document_name", "_block_document_name"), ("slug", "_block_type_slug")):
            value = getattr(block, attr)
            if isinstance(value, str):
                why = text_problem(value, label)
                if why:
                    yield (section,), why
