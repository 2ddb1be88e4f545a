"""Evaluation functions run inside worker processes by the executor tests (importable by
name under ``spawn``/``forkserver``, which a test's local function is not)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from llp.search import Job
from llp.training import EvaluationResult
from tests.conftest import fake_result


def smooth_score(job: Job) -> float:
    """The score of the shared fake objective (optimum at x = 0.3)."""
    x = float(job.config["x"])
    return 0.9 - (x - 0.3) ** 2 + 0.1 * job.fidelity.fraction  # an accuracy: at most 1


class FakeEvaluate:
    """``evaluate(job)`` of the fake objective, optionally slowed down a little."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def __call__(self, job: Job) -> EvaluationResult:
        if self.seconds:
            time.sleep(self.seconds)
        return fake_result(job, smooth_score(job))


class KillsItsWorker:
    """Kills the process running it (SIGKILL) for the trials in ``doomed``.

    ``times`` is how many attempts of each doomed trial die; later ones succeed. Each
    attempt leaves a file in ``folder``, so the test can count them.
    """

    def __init__(self, folder: str, doomed: tuple[int, ...], times: int) -> None:
        self.folder = folder
        self.doomed = doomed
        self.times = times

    def attempts(self, trial_id: int) -> int:
        return len(list(Path(self.folder).glob(f"trial{trial_id}-*")))

    def __call__(self, job: Job) -> EvaluationResult:
        n = self.attempts(job.trial_id)
        Path(self.folder, f"trial{job.trial_id}-{n}-{os.getpid()}").touch()
        if job.trial_id in self.doomed and n < self.times:
            time.sleep(0.05)  # let the other worker pick up a job too
            os.kill(os.getpid(), signal.SIGKILL)
        return fake_result(job, smooth_score(job))


def torch_threads(_: object) -> tuple[int, int]:
    """The PyTorch thread count and the pid of the worker running it."""
    import torch

    return torch.get_num_threads(), os.getpid()


def raise_value_error(_: object) -> None:
    raise ValueError("raised by the evaluation itself")


def pid_after(seconds: float) -> int:
    """The worker's process id, after holding it ``seconds`` (so that concurrent calls
    land on different workers)."""
    time.sleep(seconds)
    return os.getpid()


def trained_where(trainer: object) -> tuple[int | None, str, int]:
    """Train one short evaluation with ``trainer`` on this worker: the worker's slot, the
    device its model's parameters ended up on, and its process id. Held a little, so
    that concurrent calls land on different workers."""
    from llp.training import Fidelity, Trainer, worker_slot

    assert isinstance(trainer, Trainer)
    time.sleep(0.3)
    model, result = trainer.fit({"lr": 0.01, "width": 8}, Fidelity(0.25, 1))
    assert model is not None, result.failure_reason
    return worker_slot(), str(next(model.parameters()).device), os.getpid()
