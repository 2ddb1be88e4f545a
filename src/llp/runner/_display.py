from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from llp._text import inert
from llp.search._base import format_share

if TYPE_CHECKING:
    from llp.runner._runner import ProgressEvent


class ProgressDisplay:
    """A rich progress bar: position in the schedule, evaluations, resource, elapsed time
    and the study's answer so far (its score and data share). Does nothing when
    ``enabled`` is false."""

    def __init__(self, description: str, n_planned: int | None, *, enabled: bool) -> None:
        self.description = description
        self.n_planned = n_planned
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressDisplay:
        if not self.enabled:
            return self
        import sys

        sys.stdout.flush()  # keep the bar (stderr) after what was printed before the run
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("evals"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[position]}"),
            TextColumn("cost {task.fields[cost]}"),
            TextColumn("answer {task.fields[best]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(
            self.description, total=self.n_planned, position="", cost="0", best="-"
        )
        return self

    def update(self, event: ProgressEvent) -> None:
        if self._progress is None:
            return
        best = "-"
        if event.best_score is not None:
            best = f"{event.best_score:.4f} on {format_share(event.best_resource or 0.0)}"
        total = max(event.n_planned or 0, event.n_finished) or None
        self._progress.update(
            self._task,
            completed=event.n_finished,
            total=total,
            position=event.position,
            cost=f"{event.total_cost:.2f}",
            best=best,
        )

    def log(self, message: str) -> None:
        """Print a line above the bar (nothing when disabled)."""
        if self._progress is not None:
            # Messages may carry names from the knowledge base: no markup, no escapes.
            self._progress.console.print(inert(message), highlight=False, markup=False)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, traceback)
            self._progress = None
