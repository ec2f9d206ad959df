"""What writing a report returns: where it went and what its figures hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Report:
    """A written report: its ``kind`` (``study``, ``validate``, ``layout``, ``mesh``), the
    HTML file's ``path``, each figure's summary (name, title, traces with their point
    counts) and the ``facts`` its figures were drawn from (counts, files written)."""

    kind: str
    path: Path
    figures: list[dict[str, Any]]
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the kind, the path, the figures' summaries and the facts."""
        return {"report": self.kind, "path": str(self.path), "figures": self.figures, **self.facts}


__all__ = ["Report"]
