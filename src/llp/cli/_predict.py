"""``llp predict``: a zero-shot recommendation from the meta-model, without training.

The meta-model (:class:`llp.meta.MetaModelTrainer`) learns from the shipped knowledge and
the knowledge base's studies. For a new dataset it proposes configurations (the
hyperparameter predictor's choice first, then the surrogate's best diverse candidates),
each with the surrogate's predicted final *rank* among a study's configurations.

A rank is not a score, so the expected score is read off the most similar past datasets
(distance between standardised meta-features): on each, the score that completed
configurations of that predicted rank reached at the highest fidelity; the estimate is
their similarity-weighted mean, and its uncertainty combines their spread with the rank's
own uncertainty.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llp.cli._data import LoadedData
from llp.cli._errors import EXIT_NOTHING_USABLE, CliError
from llp.cli._storage import DEFAULT_STORAGE, open_knowledge_base, resolve_storage
from llp.space import canonical_config_json

if TYPE_CHECKING:
    from llp.meta import MetaModelTrainer
    from llp.space import SearchSpace


def _store_exists(storage: str) -> bool:
    if "://" in storage and not storage.lower().startswith("sqlite:"):
        return True  # a server: opening it is the only way to know
    if storage == ":memory:":
        return False
    from pathlib import Path

    path = storage.split(":///", 1)[1] if "://" in storage else storage
    return Path(path).expanduser().is_file()


def gather_prior(
    space: SearchSpace,
    *,
    prior: str,
    storage: str | None,
    fingerprint: str,
    seed: int,
    note: Callable[[str], None],
) -> tuple[MetaModelTrainer, list[str], dict[str, dict[str, Any]]]:
    """The prior a default ``llp tune`` of this dataset would start from
    (:func:`llp.knowledge.build_prior`, unfitted), the sources it used and what is known
    about each past dataset (``name``, ``source``, ``n_samples``)."""
    from llp.executors._process import available_cores
    from llp.knowledge import build_prior, prior_flags

    known: dict[str, dict[str, Any]] = {}
    if prior not in ("default", "shipped", "store"):
        raise CliError(
            "The '--prior' option of llp predict must be one of 'default', 'shipped', "
            f"'store'. Got {prior!r} instead."
        )
    kind = prior
    if prior in ("default", "shipped"):
        try:
            from llp.knowledge import shipped_datasets

            for d in shipped_datasets():
                known[d["fingerprint"]] = {
                    "name": d["name"],
                    "source": "shipped knowledge",
                    "n_samples": d["n_samples"],
                }
        except (ImportError, FileNotFoundError, ValueError) as exc:
            if prior == "shipped":
                raise CliError(
                    f"The shipped knowledge cannot be used ({type(exc).__name__}: {exc})."
                ) from exc
            note("the shipped knowledge is not installed; using the knowledge base alone")
            kind = "store"
    where = resolve_storage(storage)
    kb = None
    if kind in ("default", "store"):
        if _store_exists(where):
            kb = open_knowledge_base(where)
        elif kind == "store" or storage is not None:
            raise CliError(
                f"The knowledge base {where!r} does not exist (the '--storage' option, "
                f"$LLP_STORAGE or the default {DEFAULT_STORAGE}); run 'llp tune' first."
            )
    try:
        built = build_prior(
            space,
            prior=kind,
            knowledge_base=kb,
            exclude_datasets=(fingerprint,),
            flags=prior_flags({}),
            seed=seed,
            n_jobs=available_cores(),  # nothing else runs while the command fits
        )
        if kb is not None:
            for record in kb.list_datasets():
                known.setdefault(
                    record.fingerprint,
                    {
                        "name": record.name,
                        "source": "knowledge base",
                        "n_samples": record.n_samples,
                    },
                )
    finally:
        if kb is not None:
            kb.close()
    sources = [f"knowledge base {where}" if s == "knowledge base" else s for s in built.sources]
    return built.trainer, sources, known


def nearest_datasets(
    query: Mapping[str, float], pool: Mapping[str, Mapping[str, float]], k: int
) -> list[tuple[str, float]]:
    """The ``k`` datasets of ``pool`` closest to ``query``: Euclidean distance between
    meta-feature vectors standardised over the pool and the query (per feature: minus
    the mean, divided by the standard deviation), divided by the square root of the
    number of features so distances read the same whatever their count."""
    from llp.features import DatasetFeatureExtractor

    keys = list(pool)
    if not keys:
        return []
    vectors = np.vstack([DatasetFeatureExtractor.to_vector(pool[key]) for key in keys])
    q = DatasetFeatureExtractor.to_vector(query)
    everything = np.vstack([vectors, q])
    mean = everything.mean(axis=0)
    std = everything.std(axis=0)
    std[std == 0] = 1.0
    z = (vectors - mean) / std
    zq = (q - mean) / std
    distance = np.sqrt(((z - zq) ** 2).sum(axis=1) / z.shape[1])
    order = np.argsort(distance, kind="stable")[:k]
    return [(keys[i], float(distance[i])) for i in order]


def expected_score(
    quantile: float, spread: float, neighbours: Sequence[tuple[Sequence[float], float]]
) -> tuple[float, float] | None:
    """``(mean, std)`` of the score at rank ``quantile`` on the neighbours.

    ``neighbours`` are ``(final scores of completed configurations, weight)`` pairs.
    """
    if not (math.isfinite(quantile) and math.isfinite(spread)):
        return None  # no surrogate: no predicted rank to read off the neighbours
    values, spreads, weights = [], [], []
    for scores, weight in neighbours:
        if len(scores) == 0:
            continue
        arr = np.asarray(scores, dtype=float)
        q = min(max(quantile, 0.0), 1.0)
        values.append(float(np.quantile(arr, q)))
        high = float(np.quantile(arr, min(q + spread, 1.0)))
        low = float(np.quantile(arr, max(q - spread, 0.0)))
        spreads.append((high - low) / 2)
        weights.append(weight)
    if not values:
        return None
    w = np.asarray(weights) / np.sum(weights)
    mean = float(np.dot(w, values))
    between = float(np.dot(w, (np.asarray(values) - mean) ** 2))
    within = float(np.dot(w, spreads))
    return mean, math.sqrt(between + within**2)


def recommend(
    loaded: LoadedData,
    *,
    space: SearchSpace,
    storage: str | None,
    prior: str,
    seed: int,
    n_configs: int,
    n_neighbours: int,
    note: Callable[[str], None],
) -> dict[str, Any]:
    """The ``llp predict`` result as a JSON-ready dict.

    Raises
    ------
    CliError
        Exit 2 for user mistakes; exit 1 when there is too little knowledge to predict.
    """
    from llp.runner import describe_dataset

    data = loaded.fidelity_data(seed=seed)
    info = describe_dataset(data, name=loaded.name, seed=seed)
    family = loaded.recipe.family
    trainer, sources, known = gather_prior(
        space, prior=prior, storage=storage, fingerprint=info.fingerprint, seed=seed, note=note
    )
    if not trainer.experiences:
        raise CliError(
            "There is no knowledge to recommend from: "
            + (", ".join(sources) if sources else "no source")
            + " holds no evaluations of other datasets. Run 'llp tune' on a few datasets "
            "first: every study becomes the meta-model's experience.",
            exit_code=EXIT_NOTHING_USABLE,
        )
    trainer.fit()
    skipped = sum(trainer.skipped_rows_.values())
    if skipped:
        note(
            f"the meta-model left out {skipped} stored rows with values beyond float32's "
            "range (a diverged run, or a damaged record)"
        )
    n_datasets = len(trainer.datasets)
    if trainer.predictor_ is None:
        raise CliError(
            f"Too little knowledge to recommend from: {len(trainer.experiences)} evaluations "
            f"of {n_datasets} dataset(s) ({', '.join(sources)}); the meta-model needs "
            "studies of at least 2 datasets. Run 'llp tune' on more datasets first.",
            exit_code=EXIT_NOTHING_USABLE,
        )
    # The zero-shot pick first (what MetaProbing would start from and defend), then the
    # meta-model's other suggestions.
    suggestions = []
    pick = trainer.zero_shot(info.meta_features, family)
    if pick is not None:
        suggestions.append(pick)
    for s in trainer.suggest(info.meta_features, family, n_configs + 1, seed=seed):
        if len(suggestions) >= n_configs:
            break
        if pick is None or canonical_config_json(s.config) != canonical_config_json(pick.config):
            suggestions.append(s)
    # What each past dataset looks like and what its configurations finally scored.
    meta: dict[str, Mapping[str, float]] = {}
    finals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    families: dict[str, set[str]] = defaultdict(set)
    for (study, _), (score, exp) in trainer.final_scores().items():
        meta.setdefault(exp.dataset, exp.meta_features)
        families[exp.dataset].add(exp.model_family or "")
        if score is not None and exp.result.objective == "val_accuracy":
            finals[exp.dataset][f"{exp.model_family or ''}\x00{study}"].append(float(score))
    close = nearest_datasets(info.meta_features, meta, n_neighbours)

    def scores_of(dataset: str) -> list[float]:
        same = [v for k, v in finals[dataset].items() if k.split("\x00")[0] == family]
        chosen = same or list(finals[dataset].values())
        return [s for scores in chosen for s in scores]

    neighbours = [(scores_of(d), 1.0 / (1.0 + dist)) for d, dist in close]
    recommendations = []
    for s in suggestions:
        estimate = expected_score(s.predicted_quantile, s.uncertainty, neighbours)
        recommendations.append(
            {
                "config": dict(s.config),
                "source": s.source,
                "predicted_rank": s.predicted_quantile,
                "rank_uncertainty": s.uncertainty,
                "expected_score": None if estimate is None else estimate[0],
                "expected_score_std": None if estimate is None else estimate[1],
            }
        )
    similar = []
    for d, dist in close:
        scores = scores_of(d)
        about = known.get(d, {})
        similar.append(
            {
                "name": about.get("name") or d[:12],
                "fingerprint": d,
                "source": about.get("source", "knowledge base"),
                "n_samples": about.get("n_samples"),
                "distance": dist,
                "best_score": max(scores) if scores else None,
                "model_families": sorted(f for f in families[d] if f),
            }
        )
    return {
        "data": {
            "name": loaded.name,
            "description": loaded.description,
            "fingerprint": info.fingerprint,
        },
        "family": family,
        "objective": "val_accuracy",
        "sources": sources,
        "n_evaluations": len(trainer.experiences),
        "n_datasets": n_datasets,
        "surrogate_fitted": trainer.surrogate_ is not None,
        "recommendations": recommendations,
        "similar_datasets": similar,
        "explanation": (
            "predicted_rank: the surrogate's predicted percentile rank of the configuration's "
            "final score among a study's configurations (1 = best). expected_score: the "
            "validation accuracy completed configurations of that rank reached on the "
            f"{len(close)} most similar past datasets, weighted by similarity; its std "
            "combines their spread and the rank's uncertainty."
        ),
    }


__all__ = ["expected_score", "gather_prior", "nearest_datasets", "recommend"]
