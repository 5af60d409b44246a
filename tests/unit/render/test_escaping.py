"""What the server holds is printed safely: names, tags and values with control bytes, line breaks or
bidi overrides are escaped in every renderer, so they can neither recolour, hide, split nor reorder lines."""
from __future__ import annotations

import re

import pytest

from reconciler.render import markdown, safe, status, text

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf

ANSI = re.compile(r"\x1b\[[0-9;]*m")
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
NASTY = "\x1b[31mred\x07\u202eevil\nfake: line\x9b2J|`"


@pytest.fixture
def plan():
    """A delete of a nasty-named deployment (made on the server by hand) and an update from nasty values."""
    fake = pf.FakePrefect()
    fake.deploy_manifest(pf.manifest(NASTY, flow="Flow\x1b[8m"))
    fake.deploy_manifest(pf.manifest("hourly", tags=[NASTY], description=NASTY, version=NASTY,
                                     parameters={"url": NASTY}))
    fake.set_inventory(pf.SOURCE, [f"Flow\x1b[8m/{NASTY}", "Cat Facts/hourly"])
    return pf.make_plan(fake, [pf.manifest("hourly")]).plan


def test_the_plan_carries_the_nasty_values(plan):
    assert {a.action for a in plan.actions} >= {"delete", "update"}
    assert any(NASTY in a.identity for a in plan.actions)


@pytest.mark.parametrize("render", [
    lambda p: text.render_plan(p, colour=False),
    lambda p: ANSI.sub("", text.render_plan(p, colour=True)),
    markdown.render_plan,
    lambda p: status.render_text(p, colour=False),
    lambda p: ANSI.sub("", status.render_text(p, colour=True)),
    status.render_markdown,
], ids=["text", "text-colour", "markdown", "status", "status-colour", "status-markdown"])
def test_no_renderer_prints_a_raw_control_or_bidi_character(plan, render):
    out = render(plan)
    assert not UNSAFE.search(out), repr(UNSAFE.search(out).group())
    assert "fake: line" in out and "\\u202e" in out


def test_colour_codes_are_only_the_painters_own(plan):
    out = text.render_plan(plan, colour=True)
    assert "\\x1b[31mred" in out                      # the name's escape is written out, not obeyed
    assert all(m.group() in ("\x1b[0m", "\x1b[1m", "\x1b[31m", "\x1b[33m") for m in ANSI.finditer(out))


def test_a_nasty_identity_stays_on_one_line(plan):
    out = text.render_plan(plan)
    lines = [line for line in out.splitlines() if "evil" in line and "delete" in line]
    assert len(lines) == 1 and "fake: line" in lines[0]


def test_markdown_code_spans_survive_backticks_and_pipes():
    assert safe.code("a`b|c") == "``a`b\\|c``"
    assert safe.code("`x`") == "`` `x` ``"
    assert safe.code("plain") == "`plain`"


@pytest.mark.parametrize("raw, shown", [
    ("plain é ✓", "plain é ✓"), ("a\nb", "a\\nb"), ("\x1b[2J", "\\x1b[2J"), ("\u202e", "\\u202e"),
    ("\x7f\x9b", "\\x7f\\x9b"), ("tab\there", "tab\\there"), ("\u200b", "\\u200b"), ("\u2028", "\\u2028"),
])
def test_safe_text(raw, shown):
    assert safe.text(raw) == shown
