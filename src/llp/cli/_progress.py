"""The live display of ``llp tune``: where the search is and what the meta-model thinks.

Three lines: the bar (iteration and data share, evaluations, elapsed time); the
configurations tried, compute spent and the study's answer so far; the search's latest
decision, from the decision (as data) that sent the evaluation (the same record the
knowledge base stores).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llp.search._base import format_share

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from llp.runner import ProgressEvent
    from llp.search import Decision


def describe_decision(decision: Decision | None) -> str | None:
    """The search's decision in a few words (``"promoted, posterior 0.9637"``,
    ``"proposed (model), prior score 0.61"``); ``None`` for an evaluation no recorded
    decision sent (a plain scheduler's)."""
    if decision is None:
        return None
    if decision.action != "proposed":
        words = decision.action
        if decision.predicted is not None and decision.uncertainty is not None:
            words += f", predicted rank {decision.predicted:.2f} ± {decision.uncertainty:.2f}"
        if decision.posterior is not None:
            words += f", posterior {decision.posterior:.4f}"
        return words
    words = f"proposed ({decision.source})" if decision.source else "proposed"
    if decision.prior_score is not None:
        words += f", prior score {decision.prior_score:.2f}"
    return words


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
        if event.answer is not None:
            share = format_share(event.answer.evaluation.resource)
            best = f"{event.answer.score:.4f} (trial {event.answer.trial_id}, {share} of data)"
        total = max(self.n_planned or 0, event.n_finished) or None
        self._progress.update(
            self._task, completed=event.n_finished, total=total, position=event.position
        )
        self._progress.status = Text(
            f"  {len(self.trials)} configs · cost {event.total_cost:.1f} · answer {best}"
        )
        evaluation = event.evaluation
        if evaluation is not None:
            decision = describe_decision(evaluation.job.decision)
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
