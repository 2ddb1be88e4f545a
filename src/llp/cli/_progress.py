"""The live display of ``llp tune``: where the search is and what the meta-model thinks.

Three lines: the bar (iteration and data share, evaluations, elapsed time); the
configurations tried, compute spent and best score so far; the meta-model's latest
decision, read from the reason the scheduler gave the evaluation (the same text the
knowledge base stores).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llp.report._collect import (
    decision_action,
    parse_posterior,
    parse_prediction,
    parse_prior_score,
    parse_source,
)
from llp.search._base import format_share

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from llp.runner import ProgressEvent


def describe_decision(reason: str) -> str | None:
    """The search's decision in a few words (``"promoted, posterior 0.9637"``,
    ``"proposed (model), prior score 0.61"``); ``None`` for an evaluation no decision of
    the meta-guided search sent (a plain scheduler's)."""
    action = decision_action(reason)
    source = parse_source(reason)
    posterior = parse_posterior(reason)
    parsed = parse_prediction(reason)
    prior = parse_prior_score(reason)
    if action != "proposed":
        words = action
        if parsed is not None:
            words += f", predicted rank {parsed[0]:.2f} ± {parsed[1]:.2f}"
        if posterior is not None:
            words += f", posterior {posterior:.4f}"
        return words if (parsed, posterior) != (None, None) else None
    if source is None:
        return None
    return f"proposed ({source})" + (f", prior score {prior:.2f}" if prior is not None else "")


class TuneProgress:
    """Callable progress display; pass it as ``progress_callback``.

    Parameters
    ----------
    console : rich Console
        Where to draw (stderr, so stdout stays for results).
    n_planned : int or None
        Evaluations the plan expects (the bar's total).
    enabled : bool
        ``False`` makes it a no-op that still counts events.
    """

    def __init__(self, console: Console, n_planned: int | None, *, enabled: bool) -> None:
        self.console = console
        self.n_planned = n_planned
        self.enabled = enabled
        self.n_finished = 0
        self.trials: set[int] = set()
        self.last_event: ProgressEvent | None = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> TuneProgress:
        if not self.enabled:
            return self
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        class _WithStatusLines(Progress):
            status: Text = Text("")
            decision: Text = Text("")

            def get_renderables(self) -> Iterable[RenderableType]:
                yield self.make_tasks_table(self.tasks)
                if self.status.plain:
                    yield self.status
                if self.decision.plain:
                    yield self.decision

        self._progress = _WithStatusLines(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[position]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("evals"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(
            "tune",
            total=self.n_planned,
            position="preparing: meta-features, the meta-model's prior",
        )
        return self

    def __call__(self, event: ProgressEvent) -> None:
        self.last_event = event
        if event.evaluation is not None:
            self.n_finished = event.n_finished
            self.trials.add(event.evaluation.trial_id)
        if self._progress is None:
            return
        from rich.text import Text

        best = "-"
        if event.best_score is not None:
            best = f"{event.best_score:.4f} ({format_share(event.best_resource or 0.0)} of data)"
        total = max(self.n_planned or 0, event.n_finished) or None
        self._progress.update(
            self._task, completed=event.n_finished, total=total, position=event.position
        )
        self._progress.status = Text(
            f"  {len(self.trials)} configs · cost {event.total_cost:.1f} · best {best}"
        )
        evaluation = event.evaluation
        if evaluation is not None:
            decision = describe_decision(evaluation.job.reason)
            if decision is not None:
                measured = f"{evaluation.score:.4f}" if evaluation.score is not None else "failed"
                self._progress.decision = Text.assemble(
                    ("  search: ", "cyan"),
                    f"trial {evaluation.trial_id} {decision} → {measured} "
                    f"({format_share(evaluation.resource)})",
                )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, traceback)
            self._progress = None


__all__ = ["TuneProgress", "describe_decision"]
