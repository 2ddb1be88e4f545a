"""The trained weights a study keeps for its report, in the user's cache folder.

A report draws loss slices around a study's answer and its best other configurations,
which needs their trained models. Retraining them costs about as much as the search's
top rung, so a study keeps the weights of what it trains on its top rung, in
``$LLP_CACHE_DIR/weights`` (``llp._cache``: written whole or not at all, never a
failure of the study), and at the end keeps only the :data:`KEPT_PER_STUDY` its report
slices. A report uses kept weights only after it has measured the model's validation
score again and found the stored one; anything else (no file, a damaged, foreign or
stale file, other data) is retrained as before. The files are plain arrays read without
unpickling (``np.load(allow_pickle=False)``).

``LLP_CACHE_DIR=""`` turns it off, as every cache of llp.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llp._cache import cache_dir, read_arrays, touch, write_arrays
from llp._digest import short_digest
from llp.training._records import EvaluationStatus, Fidelity, rank_key

if TYPE_CHECKING:
    from torch import nn

#: Trained models a finished study keeps: its answer and the best others on its top rung
#: (what its report slices by default).
KEPT_PER_STUDY = 3
#: Weight files kept in the cache folder over all studies (the least recently used go).
KEPT_FILES = 96


def study_key(name: str, seed: int, created_at: Any, fingerprint: str | None) -> str:
    """What names a study's weight files: a digest of its name, seed, creation time (to
    the second, so a store's rounding does not matter) and dataset fingerprint."""
    when = created_at
    if isinstance(when, dt.datetime):
        if when.tzinfo is not None:  # a server may give it back in its own time zone
            when = when.astimezone(dt.UTC)
        when = when.replace(tzinfo=None).isoformat(timespec="seconds")
    text = json.dumps([name, int(seed), str(when), fingerprint or ""])
    return short_digest(text, 16)


@dataclass(frozen=True)
class KeptWeights:
    """Where one study keeps trained weights, and which evaluations it keeps.

    Attributes
    ----------
    folder : Path
        The cache's ``weights`` folder.
    key : str
        :func:`study_key` of the study.
    min_fraction : float
        Evaluations on at least this share of the data are kept (the top rung).
    """

    folder: Path
    key: str
    min_fraction: float = 1.0

    @classmethod
    def for_study(
        cls,
        name: str,
        seed: int,
        created_at: Any,
        fingerprint: str | None,
        *,
        min_fraction: float = 1.0,
    ) -> KeptWeights | None:
        """The study's place in the cache; ``None`` when the cache is turned off."""
        base = cache_dir()
        if base is None:
            return None
        return cls(base / "weights", study_key(name, seed, created_at, fingerprint), min_fraction)

    def path(self, trial_id: int, fidelity: Fidelity) -> Path:
        return self.folder / (
            f"{self.key}-t{int(trial_id)}-f{fidelity.fraction:.6g}-e{int(fidelity.epochs)}.npz"
        )

    def wants(self, fidelity: Fidelity) -> bool:
        return fidelity.fraction >= self.min_fraction - 1e-12

    def save(self, model: nn.Module, trial_id: int, fidelity: Fidelity) -> Path | None:
        """Write ``model``'s weights (parameters and buffers); ``None`` when they cannot
        be written (never raises for that)."""
        state = model.state_dict()
        try:
            # Stored by position with the names beside them: a parameter may have any name.
            arrays = {f"w{i}": t.detach().cpu().numpy() for i, t in enumerate(state.values())}
        except (TypeError, RuntimeError):  # a dtype numpy has not (bfloat16): not kept
            return None
        arrays["names"] = np.array(list(state), dtype=str)
        return write_arrays(
            self.path(trial_id, fidelity), arrays, compressed=False, keep=KEPT_FILES
        )

    def load(
        self, model_fn: Callable[[], nn.Module], trial_id: int, fidelity: Fidelity
    ) -> nn.Module | None:
        """A model from ``model_fn`` with the kept weights of ``trial_id`` at ``fidelity``;
        ``None`` when there are none, or they do not fit the model exactly (names,
        shapes, dtypes)."""
        import torch

        path = self.path(trial_id, fidelity)
        if not path.is_file():
            return None
        try:
            arrays = read_arrays(path)
            names = [str(n) for n in arrays.pop("names").tolist()]
            model = model_fn()
            state = model.state_dict()
            if names != list(state) or len(arrays) != len(names):
                return None
            loaded = {}
            for i, (name, tensor) in enumerate(state.items()):
                value = torch.from_numpy(arrays[f"w{i}"])
                if value.shape != tensor.shape or value.dtype != tensor.dtype:
                    return None
                loaded[name] = value
            model.load_state_dict(loaded, strict=True)
        except Exception:  # a damaged or foreign file, or a model_fn that fails: retrain
            return None
        touch(path)
        return model

    def keep_only(self, trials: Iterable[int]) -> None:
        """Remove this study's weight files of every trial but ``trials``."""
        wanted = {f"{self.key}-t{int(t)}-" for t in trials}
        for entry in self.folder.glob(f"{self.key}-t*.npz"):
            if not any(entry.name.startswith(prefix) for prefix in wanted):
                with contextlib.suppress(OSError):
                    entry.unlink()


def same_score(measured: float | None, stored: float | None) -> bool:
    """Whether a score measured again equals the stored one (to 6 decimals)."""
    return (
        measured is not None
        and stored is not None
        and math.isfinite(measured)
        and math.isclose(measured, stored, abs_tol=1e-6)
    )


def top_trials_of(
    evaluations: Iterable[Any], answer_trial: int | None, k: int = KEPT_PER_STUDY
) -> list[int]:
    """The trials a report slices: the answer, then the best others by measured score at
    the highest fidelity any success reached (ties to the lower validation loss, then
    the lower trial: :func:`llp.training.rank_key`), ``k`` in all.
    ``evaluations`` are :class:`llp.search.Evaluation`\\ s."""
    ok = [
        e
        for e in evaluations
        if e.status is EvaluationStatus.COMPLETE and e.score is not None and math.isfinite(e.score)
    ]
    if not ok:
        return []
    top = max((e.fidelity.fraction, e.fidelity.epochs) for e in ok)
    at_top = [e for e in ok if (e.fidelity.fraction, e.fidelity.epochs) == top]
    ranked = [e.trial_id for e in sorted(at_top, key=lambda e: rank_key(e.result, e.trial_id))]
    if answer_trial is not None:
        ranked = [answer_trial] + [t for t in ranked if t != answer_trial]
    return ranked[:k]


__all__ = [
    "KEPT_FILES",
    "KEPT_PER_STUDY",
    "KeptWeights",
    "same_score",
    "study_key",
    "top_trials_of",
]
