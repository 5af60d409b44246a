"""The Report: what apply did to each deployment, what failed and why."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .plans import Plan

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass(frozen=True)
class Result:
    identity: str
    action: str
    status: str            # ok | failed | skipped
    message: str = ""
    writes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"deployment": self.identity, "action": self.action, "status": self.status,
                "message": self.message, "writes": self.writes}


@dataclass
class Report:
    plan: Plan
    results: list[Result] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    writes: int = 0
    seconds: float = 0.0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1, "source": self.plan.source,
            "server": {"url": self.plan.api_url, "version": self.plan.server_version},
            "results": [r.to_json() for r in self.results],
            "summary": self.plan.summary, "failed": len(self.failures),
            "writes": self.writes, "seconds": round(self.seconds, 3), "notices": self.notices,
        }
