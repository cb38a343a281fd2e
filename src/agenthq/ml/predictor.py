"""The failure model at work: the probability that an attempt about to start fails.

A predictor holds the saved model and a `History` kept current from the telemetry table (read
once over the last `HISTORY_DAYS`, then only what finished since, at most every
`REFRESH_S`), so scoring a step is the model's arithmetic plus a few dictionary look-ups.
`open_predictor` says why there is none: no model, the `learn` extra missing, too old, or not
better than the baseline — in which case nothing uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agenthq.errors import LearningError
from agenthq.ml.features import Candidate, History
from agenthq.ml.model import TrainedModel, load, read_meta
from agenthq.store.api import TelemetryRow

__all__ = ["FailurePredictor", "ModelSettings", "open_predictor"]

HISTORY_DAYS = 30
REFRESH_S = 30.0

RowSource = Callable[..., list[TelemetryRow]]  # Store.list_telemetry


@dataclass(frozen=True)
class ModelSettings:
    """`[model]` of agenthq.toml."""

    enabled: bool = True
    weight: float = 0.25  # how many risk points a certain failure adds, over 100
    max_age_days: float = 30.0


class FailurePredictor:
    def __init__(
        self, model: TrainedModel, rows: RowSource, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.model = model
        self.rows = rows
        self.clock = clock
        self.history = History()
        self._read_at = 0.0
        self._seen: set[tuple[str, str, int]] = set()
        self._refresh(first=True)

    @property
    def name(self) -> str:
        meta = self.model.meta
        return f"{meta.kind} trained {time.strftime('%Y-%m-%d', time.gmtime(meta.created_at))}"

    def predict(self, candidate: Candidate) -> float:
        (probability,) = self.predict_many([candidate])
        return probability

    def predict_many(self, candidates: Sequence[Candidate]) -> list[float]:
        """One call to the model for many steps (a run page): the per-call cost dominates."""
        if self.clock() - self._read_at >= REFRESH_S:
            self._refresh()
        return self.model.predict_many([self.history.features(c) for c in candidates])

    def _refresh(self, first: bool = False) -> None:
        now = self.clock()
        if first:
            rows = self.rows(started_from=now - HISTORY_DAYS * 86400.0)
        else:
            # Finished since the last read (with a minute's overlap for slow commits).
            rows = self.rows(finished_after=self.history.latest_finish - 60.0)
        for row in sorted(rows, key=lambda r: r.finished_at):
            key = (row.run_id, row.step_id, row.attempt)
            if key not in self._seen:
                self._seen.add(key)
                self.history.add(row)
        self._read_at = now


def open_predictor(
    directory: Path, settings: ModelSettings, rows: RowSource, *, now: float | None = None
) -> tuple[FailurePredictor | None, str]:
    """The predictor to use, or None and why not."""
    if not settings.enabled:
        return None, "the model is disabled ([model] enabled = false)"
    meta = read_meta(directory)
    if meta is None:
        return None, "no model has been trained (`agenthq model train`)"
    usable, why = meta.usable(time.time() if now is None else now, settings.max_age_days)
    if not usable:
        return None, why
    try:
        model = load(directory)
    except LearningError as exc:
        return None, str(exc)
    return FailurePredictor(model, rows), why
