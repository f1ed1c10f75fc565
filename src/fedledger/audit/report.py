"""The result of an audit: named checks, each passed or failed with what exactly is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuditReport", "Check"]


@dataclass
class Check:
    """One audit check.

    Attributes
    ----------
    name
        Short name (``chain``, ``models``, ...).
    description
        What it verifies, in one line.
    problems
        Each names exactly what was found wrong; empty when the check passes.
    notes
        Facts worth reporting that are not failures (e.g. an outvoted Byzantine vote).
    checked
        How many items were verified.
    """

    name: str
    description: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, problem: str) -> None:
        self.problems.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "description": self.description,
            "checked": self.checked,
            "problems": self.problems,
            "notes": self.notes,
        }


@dataclass
class AuditReport:
    """Every check of one run folder."""

    run_dir: str
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "ok": self.ok,
            "facts": self.facts,
            "checks": [c.to_json() for c in self.checks],
        }
