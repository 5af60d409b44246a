"""Where the shared fixtures are: `../shared/fixtures` beside the checkout (as CI lays it out).

RECONCILE_FIXTURES overrides it; the project's own workspace path is the last resort.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    candidates = [Path(os.environ["RECONCILE_FIXTURES"])] if os.environ.get("RECONCILE_FIXTURES") else []
    candidates += [REPO.parent / "shared" / "fixtures", Path("/work/shared/fixtures")]
    for candidate in candidates:
        if (candidate / "real-world").is_dir():
            return candidate
    raise RuntimeError(f"shared fixtures not found (looked in {', '.join(map(str, candidates))}); "
                       "set RECONCILE_FIXTURES")


FIXTURES = fixtures_dir()
