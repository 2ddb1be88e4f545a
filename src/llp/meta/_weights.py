"""Which earlier studies predict this one: weights by ranking loss, in the style of RGPE.

A meta-model pooled over every earlier study treats them alike, or tells them apart by
dataset meta-features alone. Here each earlier study is a model of its own (its final
ranks, smoothed over the space by a Gaussian kernel, :func:`kernel_predict`), and is
weighed by how well it orders *this* study's measurements so far: the count of pairs of
configurations measured on the same rung that it ranks the wrong way round
(:func:`discordant_pairs`). This study's own measurements are a model too, scored
leave-one-out. Over bootstrap resamples of the measurements, each model's weight is the
share of resamples in which it has the smallest loss (ties shared), as in the
ranking-weighted Gaussian-process ensemble of Feurer et al. (2018). Early on, when the
study has measured little, the earlier studies that order it best carry the weight; once
its own measurements order themselves better than any earlier study does, the weight moves
to this study (with a handful of measurements per rung that is rare: BENCHMARKS.md,
"Which earlier studies predict this one").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Width of the Gaussian kernel that carries an earlier study's ranks to nearby
#: configurations, in the unit cube of the encoded space (far from every measured one, a
#: configuration takes the rank of the nearest).
BANDWIDTH = 0.15

#: Bootstrap resamples of this study's measurements behind each set of weights.
N_BOOTSTRAP = 100

#: The name of this study's own model among the weights.
THIS_STUDY = "this study"


@dataclass(frozen=True)
class StudyWeights:
    """How much each model is leaned on: earlier studies by name, and :data:`THIS_STUDY`
    (weights sum to 1), with the measurements they were judged on."""

    weights: Mapping[str, float] = field(default_factory=dict)
    #: Pairs of same-rung measurements the losses counted.
    n_pairs: int = 0

    @property
    def earlier(self) -> dict[str, float]:
        """The earlier studies with a weight above 0, largest first."""
        items = [(k, w) for k, w in self.weights.items() if k != THIS_STUDY and w > 0]
        return dict(sorted(items, key=lambda kw: (-kw[1], kw[0])))

    def to_json(self) -> dict[str, object]:
        """``{"earlier": {study: weight, ...}, "this_study": weight, "n_pairs": n}``."""
        return {
            "earlier": self.earlier,
            "this_study": self.weights.get(THIS_STUDY, 0.0),
            "n_pairs": self.n_pairs,
        }

    def describe(self, top: int = 3) -> str:
        """``"<study> 0.42, <study> 0.21, this study 0.30"``: the ``top`` earlier studies
        and this study's own share."""
        shown = [f"{k} {w:.2f}" for k, w in list(self.earlier.items())[:top]]
        rest = len(self.earlier) - len(shown)
        if rest > 0:
            shown.append(f"{rest} more {sum(list(self.earlier.values())[top:]):.2f}")
        shown.append(f"{THIS_STUDY} {self.weights.get(THIS_STUDY, 0.0):.2f}")
        return ", ".join(shown)


def kernel_predict(
    X_train: np.ndarray, y_train: np.ndarray, X: np.ndarray, bandwidth: float = BANDWIDTH
) -> np.ndarray:
    """Nadaraya-Watson regression: at each row of ``X``, the Gaussian-kernel weighted
    mean of ``y_train`` (encoded configurations in the unit cube)."""
    d2 = ((X[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=-1)
    logits = -d2 / (2.0 * bandwidth**2)
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray((w @ y_train) / w.sum(axis=1))


def _comparable(measured: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Pairs ``i < j`` of one group whose measured scores differ."""
    same = groups[:, None] == groups[None, :]
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    return same & upper & (measured[:, None] != measured[None, :])


def discordant_pairs(predicted: np.ndarray, measured: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each row of ``predicted`` (one model's predictions per row, or one vector), the
    pairs of the same group it orders against ``measured`` (pairs tied in ``measured`` are
    not counted; a tie in the prediction counts half)."""
    counted = _comparable(measured, groups)
    P = np.atleast_2d(predicted)
    dm = np.sign(measured[:, None] - measured[None, :])
    dp = np.sign(P[:, :, None] - P[:, None, :])
    wrong = ((dp * dm < 0) & counted).sum(axis=(1, 2))
    tied = ((dp == 0) & counted).sum(axis=(1, 2))
    return np.asarray(wrong + 0.5 * tied, dtype=float)


def leave_one_out(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each measurement predicted by the kernel model of the others of its group (the
    group's mean when it is alone)."""
    out = np.empty_like(y, dtype=float)
    for i in range(len(y)):
        others = (groups == groups[i]) & (np.arange(len(y)) != i)
        out[i] = kernel_predict(X[others], y[others], X[i : i + 1])[0] if others.any() else 0.0
    return out


def rank_weights(
    models: Mapping[str, tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[object],
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> StudyWeights:
    """Weights of the earlier studies' ``models`` (name -> encoded configurations and
    their final ranks) and of this study, judged on its measurements ``(X, y)``: ``X``
    encoded configurations, ``y`` scores, ``groups`` their rungs (only pairs within a
    rung are compared). Without a pair to compare, every weight goes to the earlier
    studies, equally."""
    names = sorted(models)
    index: dict[object, int] = {}
    g = np.asarray([index.setdefault(v, len(index)) for v in groups])
    n_pairs = int(_comparable(y, g).sum())
    if not names:
        return StudyWeights({THIS_STUDY: 1.0}, n_pairs)
    if n_pairs == 0:
        return StudyWeights({**dict.fromkeys(names, 1.0 / len(names)), THIS_STUDY: 0.0}, 0)
    predictions = np.vstack(
        [kernel_predict(*models[name], X) for name in names] + [leave_one_out(X, y, g)]
    )
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11]))
    wins = np.zeros(len(names) + 1)
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        losses = discordant_pairs(predictions[:, idx], y[idx], g[idx])
        best = losses == losses.min()
        wins[best] += 1.0 / best.sum()
    weights = wins / n_bootstrap
    named = {n: float(w) for n, w in zip(names, weights[:-1], strict=True)}
    return StudyWeights({**named, THIS_STUDY: float(weights[-1])}, n_pairs)


__all__ = [
    "BANDWIDTH",
    "N_BOOTSTRAP",
    "THIS_STUDY",
    "StudyWeights",
    "discordant_pairs",
    "kernel_predict",
    "leave_one_out",
    "rank_weights",
]
