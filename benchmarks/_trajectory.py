"""Anytime answers of the peers that report results rung by rung (Optuna, SMAC3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def rung_incumbents(
    history: Iterable[tuple[float, Mapping[str, Any], float, int]],
) -> list[tuple[float, dict[str, Any]]]:
    """``[(cumulative cost, incumbent config), ...]`` from ``(cost, config, score, rung)``
    records in the order they were measured: the incumbent is the best score at the
    highest rung reached so far (what the search would return if stopped there)."""
    out: list[tuple[float, dict[str, Any]]] = []
    best: tuple[int, float] | None = None
    best_config: Mapping[str, Any] = {}
    for cost, config, value, rung in history:
        if best is None or (rung, value) > best:
            best, best_config = (rung, value), config
        out.append((cost, dict(best_config)))
    return out
