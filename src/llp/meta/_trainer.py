from __future__ import annotations

import hashlib
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import rankdata

from llp._checks import check_int, check_real
from llp.features import (
    TRAINING_FEATURES,
    DatasetFeatureExtractor,
    TrainingResultFeatureExtractor,
)
from llp.meta._estimators import HyperparameterPredictor, PerformanceSurrogate
from llp.meta._experience import (
    MODEL_FAMILIES,
    Experience,
    encode_projected,
    family_vector,
    project_config,
)
from llp.space import SearchSpace, canonical_config_json
from llp.training import Curve, EvaluationResult, EvaluationStatus

#: Fits (predictor, surrogate, rows skipped, final ranks) by the digest of what they were
#: fitted on.
_FIT_CACHE: dict[str, tuple[Any, Any, dict[str, int], tuple[np.ndarray, np.ndarray]]] = {}
_FIT_CACHE_SIZE = 4
#: Studies a configuration must have been measured in for its mean rank to make it a
#: default for new datasets (:meth:`MetaModelTrainer.prior_candidates`).
MIN_SUPPORT = 3

#: Experiences whose content a digest already names (:func:`name_experiences`), by id:
#: ``(experience, source, position)``. Holding the experiences keeps their ids theirs.
_NAMED: dict[int, tuple[Experience, int, int]] = {}
#: The digest of each named source, by number; at most :data:`_NAMED_SOURCES_KEPT` kept.
_NAMED_SOURCES: dict[int, str] = {}
_NAMED_SOURCES_KEPT = 4
_NAMING = threading.Lock()


def name_experiences(experiences: Sequence[Experience], digest: str) -> None:
    """Declare that ``digest`` names the content of ``experiences``, in their order (a
    knowledge file's records, by the digest of the file's bytes: the same bytes give the
    same records). The fit's key (:meth:`MetaModelTrainer.fit`) then names each of these
    objects by the digest and its position, instead of digesting all it holds (most of
    that key's time on the shipped prior). A record that is not one of these very
    objects (a copy, an edited one) is digested whole, as before. The last
    :data:`_NAMED_SOURCES_KEPT` sources are kept."""
    with _NAMING:
        source = max(_NAMED_SOURCES, default=-1) + 1
        _NAMED_SOURCES[source] = str(digest)
        for position, exp in enumerate(experiences):
            _NAMED[id(exp)] = (exp, source, position)
        while len(_NAMED_SOURCES) > _NAMED_SOURCES_KEPT:
            oldest = min(_NAMED_SOURCES)
            del _NAMED_SOURCES[oldest]
            for key in [k for k, (_, src, _) in _NAMED.items() if src == oldest]:
                del _NAMED[key]


_LANDSCAPE_COLUMNS = [i for i, n in enumerate(TRAINING_FEATURES) if n.startswith("landscape_")]


@dataclass(frozen=True)
class Suggestion:
    """A configuration proposed by the meta-model, with what it expects of it."""

    config: dict[str, Any]
    predicted_quantile: float
    uncertainty: float
    source: str


def _quantiles(scores: Sequence[float | None]) -> np.ndarray:
    """Percentile rank in [0, 1] of each score within its group; failures rank 0. Ties
    share their mean rank, so equal scores get equal targets."""
    values = np.array([-np.inf if s is None else float(s) for s in scores])
    n = values.shape[0]
    if n == 1:
        return np.array([0.0 if values[0] == -np.inf else 1.0])
    out = (rankdata(values, method="average") - 1.0) / (n - 1)
    out[values == -np.inf] = 0.0
    return out


def _config_key(config: Mapping[str, Any]) -> Any:
    """A hashable key that tells configurations apart (1, 1.0 and True differ), cheaper
    than :func:`canonical_config_json`, which it falls back to for values that are not
    scalars."""
    try:
        key = tuple(sorted((k, type(v).__name__, v) for k, v in config.items()))
        hash(key)
    except TypeError:
        return canonical_config_json(config)
    return key


def _study_final_ranks(
    study: str, exps: Sequence[Experience], config_key: Any = _config_key
) -> dict[tuple[str, int], tuple[float | None, Experience]]:
    """:meth:`MetaModelTrainer.final_ranks` of one study."""

    # Each evaluation's fidelity as a tuple, once (a prior holds tens of thousands).
    fid = {id(e): (e.result.fidelity.fraction, e.result.fidelity.epochs) for e in exps}
    complete = [
        e
        for e in exps
        if e.result.status is EvaluationStatus.COMPLETE and e.result.score is not None
    ]
    if not complete:
        return {}
    level = {f: i for i, f in enumerate(sorted({fid[id(e)] for e in complete}))}
    # Each trial is judged on its highest fidelity; a failure anywhere fails it.
    judged_on: dict[int, Experience] = {}
    judged_level: dict[int, int] = {}
    for e in complete:
        at = level[fid[id(e)]]
        if at > judged_level.get(e.trial, -1):
            judged_on[e.trial] = e
            judged_level[e.trial] = at
    failures = {e.trial: e for e in exps if e.result.status is EvaluationStatus.FAILED}
    # Successive halving's order holds within one bracket, where every trial started on
    # the lowest fidelity. Elsewhere only the trials on the top fidelity (and failed
    # ones) are ranked.
    lowest = min(level, key=level.__getitem__)
    started_lowest = {e.trial for e in exps if fid[id(e)] == lowest}
    halving = all(e.halving for e in exps) and started_lowest == {e.trial for e in exps}
    if not halving:
        top_level = len(level) - 1
        judged_on = {t: e for t, e in judged_on.items() if judged_level[t] == top_level}
        exps = [e for e in exps if e.trial in judged_on or e.trial in failures]
    # A configuration's trials are its replicates (one trial in most studies).
    replicates: dict[Any, set[int]] = defaultdict(set)
    for e in exps:
        replicates[config_key(e.result.config)].add(e.trial)
    groups = [sorted(trials) for trials in replicates.values()]
    keys: list[tuple[int, float] | None] = []
    for trials in groups:
        if any(t in failures or t not in judged_on for t in trials):
            keys.append(None)
            continue
        top = max(judged_level[t] for t in trials)
        scores = [float(judged_on[t].result.score or 0.0) for t in trials if judged_level[t] == top]
        # Summed exactly: the mean of the same scores does not depend on their order.
        keys.append((top, math.fsum(scores) / len(scores)))
    # Percentile ranks among the configurations (replicates count once).
    position = {k: i for i, k in enumerate(sorted({k for k in keys if k is not None}))}
    ranks = _quantiles([None if k is None else float(position[k]) for k in keys])
    shown = {e.trial: e for e in exps} | judged_on | failures
    out = {
        (study, t): (None if k is None else float(q), shown[t])
        for trials, k, q in zip(groups, keys, ranks, strict=True)
        for t in trials
    }
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class _Projection:
    """What the trainer reads of one configuration in its space (:class:`_Projections`)."""

    coverage: float
    encoded: np.ndarray  # read-only
    point: tuple[str, dict[str, Any]] | None  # canonical key and configuration, if complete


class _ConfigKeys:
    """:func:`_config_key` of each result's configuration once. The results of one
    configuration usually share one read-only view (a knowledge file's do), so the key
    of a view is looked up by its identity first; the memo holds the views, so their ids
    stay theirs. Other mappings (a caller's dict may change) are keyed every time."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Mapping[str, Any], Any]] = {}

    def __call__(self, config: Mapping[str, Any]) -> Any:
        if type(config) is not MappingProxyType:
            return _config_key(config)
        held = self._by_id.get(id(config))
        if held is None or held[0] is not config:
            held = self._by_id[id(config)] = (config, _config_key(config))
        return held[1]


class _Projections:
    """Each distinct configuration projected into a space once.

    A prior holds tens of thousands of evaluations of a few thousand configurations;
    projecting, encoding and validating each evaluation's configuration again was most
    of the time of reading a prior and of ranking it."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.key = _ConfigKeys()
        self._memo: dict[Any, _Projection] = {}

    def __call__(self, config: Mapping[str, Any]) -> _Projection:
        key = self.key(config)
        found = self._memo.get(key)
        if found is None:
            projected = project_config(config, self.space)
            encoded = encode_projected(config, self.space)
            encoded.setflags(write=False)
            try:
                valid = self.space.validate(projected)
            except ValueError:
                point = None  # not a complete point of this space
            else:
                point = (canonical_config_json(valid), valid)
            found = self._memo[key] = _Projection(len(projected) / len(self.space), encoded, point)
        return found


class MetaModelTrainer:
    """Collects past evaluations and trains the two meta-models on them.

    - :class:`HyperparameterPredictor` learns, per dataset (and model family), the best
      ``top_k`` configurations by final score, weighted by their rank — not every value
      ever tried — as a function of the dataset's meta-features.
    - :class:`PerformanceSurrogate` learns to predict a configuration's *final* score
      from the dataset's meta-features, the model family, the encoded configuration and,
      when there is one, a partial-training result at a lower fidelity (learning-curve and
      landscape features plus its rank among the evaluations of its rung). Targets are
      percentile ranks of the final score within each study, so datasets of different
      difficulty share one scale; a failed run ranks 0.

    "Final" is the highest fidelity a study reached; only trials evaluated there carry a
    target (others are censored), except failures, which are known to be bad.

    Parameters
    ----------
    space : SearchSpace
        The space predictions are made in. Past configurations from other spaces are
        projected into it by name (:func:`llp.meta.project_config`).
    top_k : int, default=3
    use_dataset_features, use_training_features, use_landscape_features : bool
        Feature groups of the surrogate (for ablations).
    min_coverage : float, default=0.5
        Past configurations providing fewer of the space's hyperparameters are ignored.
    n_estimators : int, default=100
    random_state : int, default=0
    n_jobs : int or None, default=None
        Threads that build the forests (``None``: one). The fitted models are the same
        whatever it is, so it is not part of the key they are cached under.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        top_k: int = 3,
        use_dataset_features: bool = True,
        use_training_features: bool = True,
        use_landscape_features: bool = True,
        min_coverage: float = 0.5,
        n_estimators: int = 100,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(
                f"The 'space' parameter of MetaModelTrainer must be a SearchSpace. Got "
                f"{type(space).__name__} instead."
            )
        self.space = space
        self.top_k = check_int("top_k", top_k, min_value=1, owner="MetaModelTrainer")
        self.use_dataset_features = bool(use_dataset_features)
        self.use_training_features = bool(use_training_features)
        self.use_landscape_features = bool(use_landscape_features)
        self.min_coverage = check_real(
            "min_coverage", min_coverage, low=0.0, high=1.0, owner="MetaModelTrainer"
        )
        self.n_estimators = check_int(
            "n_estimators", n_estimators, min_value=1, owner="MetaModelTrainer"
        )
        self.random_state = check_int("random_state", random_state, owner="MetaModelTrainer")
        self.n_jobs = (
            None
            if n_jobs is None
            else check_int("n_jobs", n_jobs, min_value=1, owner="MetaModelTrainer")
        )
        self.experiences: list[Experience] = []
        self.predictor_: HyperparameterPredictor | None = None
        self.surrogate_: PerformanceSurrogate | None = None
        #: Rows left out of the last fit because a value was beyond float32's range,
        #: per model (``"predictor"``, ``"surrogate"``).
        self.skipped_rows_: dict[str, int] = {}
        self._training_features = TrainingResultFeatureExtractor()
        self._projections = _Projections(space)
        self._ranks_memo: (
            tuple[tuple[int, int], dict[tuple[str, int], tuple[float | None, Experience]]] | None
        ) = None

    # ------------------------------------------------------------------ collecting
    def add(self, experiences: Iterable[Experience]) -> MetaModelTrainer:
        """Add past evaluations (those too foreign to the space are skipped)."""
        for exp in experiences:
            if not isinstance(exp, Experience):
                raise TypeError(f"Expected Experience records. Got {type(exp).__name__}.")
            if self._projection(exp.result.config).coverage >= self.min_coverage:
                self.experiences.append(exp)
        return self

    def add_study(
        self,
        evaluations: Iterable[Any],
        *,
        dataset: str,
        meta_features: Mapping[str, float],
        model_family: str | None = None,
        group: str | None = None,
        study: str = "current",
    ) -> MetaModelTrainer:
        """Add the evaluations of a study (:class:`llp.search.Evaluation` records)."""
        return self.add(
            Experience(
                dataset=dataset,
                group=group,
                meta_features=meta_features,
                model_family=model_family,
                study=study,
                trial=int(e.trial_id),
                result=e.result,
            )
            for e in evaluations
        )

    def add_from_store(
        self,
        knowledge_base: Any,
        *,
        exclude_datasets: Iterable[str] = (),
        exclude_groups: Iterable[str] = (),
        recorded_before: Any = None,
    ) -> MetaModelTrainer:
        """Add every evaluation of a :class:`llp.store.KnowledgeBase` except those of the
        excluded datasets (fingerprints) and dataset groups.

        ``recorded_before`` (a datetime) keeps only evaluations written up to then: a
        resumed study must see the prior it started with, or it would propose other
        configurations than the ones it stored.
        """
        skip_datasets, skip_groups = set(exclude_datasets), set(exclude_groups)
        groups = {d.fingerprint: d.group for d in knowledge_base.list_datasets()}
        stored = knowledge_base.evaluations()
        return self.add(
            Experience.from_stored(s, group=groups.get(s.dataset_fingerprint))
            for s in stored
            if s.dataset_fingerprint not in skip_datasets
            and groups.get(s.dataset_fingerprint) not in skip_groups
            and (recorded_before is None or s.created_at <= recorded_before)
        )

    def _projection(self, config: Mapping[str, Any]) -> _Projection:
        if self._projections.space is not self.space:
            self._projections = _Projections(self.space)
        return self._projections(config)

    @property
    def datasets(self) -> set[str]:
        return {e.dataset for e in self.experiences}

    # ------------------------------------------------------------------ features
    def dataset_vector(
        self, meta_features: Mapping[str, float], model_family: str | None
    ) -> np.ndarray:
        """Dataset meta-features and model family as the models read them."""
        parts = [family_vector(model_family)]
        if self.use_dataset_features:
            parts.insert(0, DatasetFeatureExtractor.to_vector(meta_features))
        return np.concatenate(parts)

    def partial_vector(
        self, result: EvaluationResult | None, rung_quantile: float | None
    ) -> np.ndarray:
        """Partial-training features of one lower-fidelity result (zeros when absent)."""
        if result is None:
            return np.zeros(len(TRAINING_FEATURES) + 2 if self.use_training_features else 0)
        return self.partial_matrix([result], [rung_quantile])[0]

    def partial_matrix(
        self, results: Sequence[EvaluationResult], rung_quantiles: Sequence[float | None]
    ) -> np.ndarray:
        """:meth:`partial_vector` of many results at once, one row each."""
        if not self.use_training_features:
            return np.zeros((len(results), 0))
        features = self._training_features.transform(results)
        if not self.use_landscape_features:
            features[:, _LANDSCAPE_COLUMNS] = 0.0
        quantiles = [float(q or 0.0) for q in rung_quantiles]
        return np.column_stack([features, np.ones(len(results)), quantiles])

    def surrogate_row(
        self,
        meta_features: Mapping[str, float],
        model_family: str | None,
        config: Mapping[str, Any],
        result: EvaluationResult | None = None,
        rung_quantile: float | None = None,
    ) -> np.ndarray:
        """The surrogate's input for one configuration, optionally with a partial result."""
        return np.concatenate(
            [
                self.dataset_vector(meta_features, model_family),
                self._projection(config).encoded,
                self.partial_vector(result, rung_quantile),
            ]
        )

    # ------------------------------------------------------------------ training sets
    def _by_study(self) -> dict[str, list[Experience]]:
        studies: dict[str, list[Experience]] = defaultdict(list)
        for exp in self.experiences:
            studies[exp.study].append(exp)
        return studies

    def final_scores(self) -> dict[tuple[str, int], tuple[float | None, Experience]]:
        """Per (study, trial): the final score (``None`` = failed) and its evaluation.

        Only trials measured on their study's highest fidelity have one; the meta-models
        learn from :meth:`final_ranks`, which places every trial."""
        finals: dict[tuple[str, int], tuple[float | None, Experience]] = {}
        for study, exps in self._by_study().items():
            ok = [e for e in exps if e.result.status is EvaluationStatus.COMPLETE]
            if not ok:
                continue
            top = max((e.result.fidelity.fraction, e.result.fidelity.epochs) for e in ok)
            for e in exps:
                fid = (e.result.fidelity.fraction, e.result.fidelity.epochs)
                if e.result.status is EvaluationStatus.FAILED:
                    finals[(study, e.trial)] = (None, e)
                elif fid == top and finals.get((study, e.trial), (0.0,))[0] is not None:
                    finals[(study, e.trial)] = (e.result.score, e)
        return finals

    def final_ranks(self) -> dict[tuple[str, int], tuple[float | None, Experience]]:
        """Per (study, trial): the trial's final percentile rank in its study (1 = best,
        0 = worst; ``None`` = failed, ranked with the worst) and the evaluation it was
        judged on.

        A study that is one successive-halving bracket (:attr:`Experience.halving`, as
        the studies of corpus v2 are, with every trial started on the lowest fidelity)
        is ordered as successive halving orders it: a configuration measured on a
        higher fidelity ranks above every one that stopped on a lower fidelity, and
        configurations that stopped on the same fidelity rank by their score there. In
        other studies only the trials measured on the top fidelity, and failed ones,
        are ranked: in Hyperband's and MetaProbing's studies a trial's fidelity says
        where its bracket started as much as how good it was, and labelling the rest by
        where they stopped made transfer between a team's own studies worse
        (BENCHMARKS.md). A configuration trained more than once in a study (several
        trials, each with its own seed) is judged by its mean score on its highest
        fidelity, and its trials share that rank; one failed run fails it."""
        # Several meta-model parts read the ranks; they are computed once per state of
        # the experiences (appended by add(), or the list replaced).
        state = (id(self.experiences), len(self.experiences))
        if self._ranks_memo is None or self._ranks_memo[0] != state:
            ranks: dict[tuple[str, int], tuple[float | None, Experience]] = {}
            for study, exps in self._by_study().items():
                ranks.update(_study_final_ranks(study, exps, self._projections.key))
            self._ranks_memo = (state, ranks)
        return dict(self._ranks_memo[1])

    def _ranks_by_study(self) -> dict[str, dict[int, tuple[float | None, Experience]]]:
        by_study: dict[str, dict[int, tuple[float | None, Experience]]] = defaultdict(dict)
        for (study, trial), value in self.final_ranks().items():
            by_study[study][trial] = value
        return by_study

    def surrogate_training_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, groups)``: one config-only row per configuration of a study, with its
        final rank (:meth:`final_ranks`), plus one row per completed evaluation of it;
        ``groups`` are dataset keys."""
        ranks = self._ranks_by_study()
        heads: list[np.ndarray] = []  # per row: dataset and configuration columns
        evaluated: list[int] = []  # per row: its index in `results`, or -1
        results: list[EvaluationResult] = []
        rung_quantiles: list[float] = []
        targets: list[float] = []
        groups: list[str] = []
        dataset_vectors: dict[tuple[int, str | None], tuple[Any, np.ndarray]] = {}

        def head(exp: Experience, config: Mapping[str, Any]) -> np.ndarray:
            # The experiences of a study usually share their meta-features' mapping.
            key = (id(exp.meta_features), exp.model_family)
            held = dataset_vectors.get(key)
            if held is None or held[0] is not exp.meta_features:
                vector = self.dataset_vector(exp.meta_features, exp.model_family)
                held = dataset_vectors[key] = (exp.meta_features, vector)
            return np.concatenate([held[1], self._projection(config).encoded])

        for study, exps in self._by_study().items():
            quantile = ranks.get(study, {})
            if len(quantile) < 2:
                continue
            by_fidelity: dict[tuple[float, int], list[Experience]] = defaultdict(list)
            for e in exps:
                by_fidelity[(e.result.fidelity.fraction, e.result.fidelity.epochs)].append(e)
            rung_q: dict[int, float] = {}
            for group in by_fidelity.values():
                for e, q in zip(group, _quantiles([g.result.score for g in group])):
                    rung_q[id(e)] = float(q)
            first = exps[0]
            seen: set[str] = set()
            for q, final_exp in quantile.values():
                key = canonical_config_json(final_exp.result.config)
                if key in seen:
                    continue  # replicates of one configuration share one rank
                seen.add(key)
                heads.append(head(first, final_exp.result.config))
                evaluated.append(-1)
                targets.append(q or 0.0)
                groups.append(first.dataset)
            for e in exps:
                if e.trial not in quantile or e.result.status is not EvaluationStatus.COMPLETE:
                    continue
                heads.append(head(e, e.result.config))
                evaluated.append(len(results))
                results.append(e.result)
                rung_quantiles.append(rung_q[id(e)])
                targets.append(quantile[e.trial][0] or 0.0)
                groups.append(e.dataset)
        if not heads:
            return np.zeros((0, 0)), np.zeros(0), np.zeros(0, dtype=object)
        # The partial-training columns of every evaluated row in one pass (zeros for a
        # configuration-only row, as surrogate_row gives them).
        partial = self.partial_matrix(results, rung_quantiles)
        rows = np.array(evaluated)
        columns = np.zeros((len(heads), partial.shape[1]))
        columns[rows >= 0] = partial[rows[rows >= 0]]
        X, y = np.hstack([np.vstack(heads), columns]), np.array(targets)
        keep = self._readable(X, y[:, None], "surrogate")
        return X[keep], y[keep], np.array(groups, dtype=object)[keep]

    def predictor_training_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, weights)``: the best ``top_k`` configurations of every study (by
        :meth:`final_ranks`), with the dataset's features as input and the encoded
        configuration as target."""
        X: list[np.ndarray] = []
        Y: list[np.ndarray] = []
        w: list[float] = []
        for quantile in self._ranks_by_study().values():
            best: dict[str, tuple[float, int, Experience]] = {}
            for trial, (q, exp) in quantile.items():
                if q is None:
                    continue
                key = canonical_config_json(exp.result.config)
                if key not in best or (q, -trial) > best[key][:2]:
                    best[key] = (q, -trial, exp)
            ordered = sorted(best.values(), key=lambda r: (-r[0], -r[1]))
            # Weights: percentile ranks among the configurations that did not fail.
            among = _quantiles([q for q, _, _ in ordered])
            for (_, _, exp), q in list(zip(ordered, among, strict=True))[: self.top_k]:
                X.append(self.dataset_vector(exp.meta_features, exp.model_family))
                Y.append(self._projection(exp.result.config).encoded)
                w.append(0.1 + float(q))
        if not X:
            return np.zeros((0, 0)), np.zeros((0, len(self.space))), np.zeros(0)
        Xa, Ya = np.vstack(X), np.vstack(Y)
        keep = self._readable(Xa, Ya, "predictor")
        return Xa[keep], Ya[keep], np.array(w)[keep]

    def _rank_table(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`final_ranks` as two arrays, kept with a fit (whose key fixes the
        experiences and their order): the position in :attr:`experiences` of each
        entry's evaluation, and its rank (NaN: failed)."""
        position = {id(e): i for i, e in enumerate(self.experiences)}
        ranks = self.final_ranks()
        return (
            np.array([position[id(e)] for _, e in ranks.values()], dtype=np.int64),
            np.array([math.nan if r is None else r for r, _ in ranks.values()], dtype=float),
        )

    def _use_rank_table(self, positions: np.ndarray, ranks: np.ndarray) -> None:
        """:meth:`final_ranks` from :meth:`_rank_table`'s arrays, instead of ranking every
        study again (most of a warm ``llp predict``'s time after reading the prior). A
        table that does not fit these experiences is ignored: they are ranked anew."""
        exps = self.experiences
        if (
            positions.shape != ranks.shape
            or (positions.size and (positions.min() < 0 or positions.max() >= len(exps)))
            or (np.abs(ranks[~np.isnan(ranks)] - 0.5) > 0.5).any()
        ):
            return
        table: dict[tuple[str, int], tuple[float | None, Experience]] = {}
        for at, rank in zip(positions.tolist(), ranks.tolist(), strict=True):
            exp = exps[at]
            table[(exp.study, exp.trial)] = (None if math.isnan(rank) else rank, exp)
        if len(table) == len(positions):
            self._ranks_memo = ((id(exps), len(exps)), table)

    def _readable(self, X: np.ndarray, Y: np.ndarray, model: str) -> np.ndarray:
        """Rows the models can read: no value beyond float32's range (a stored record
        from an old import or another tool may hold one; it would break every fit).
        NaN stays (the estimators impute it). The count skipped is kept in
        :attr:`skipped_rows_`."""
        limit = float(np.finfo(np.float32).max)
        with np.errstate(invalid="ignore"):
            bad = (np.abs(X) > limit).any(axis=1) | (np.abs(Y) > limit).any(axis=1)
        self.skipped_rows_[model] = int(bad.sum())
        return ~bad

    # ------------------------------------------------------------------ fitting
    def fit(self) -> MetaModelTrainer:
        """Train the predictor (needs 2+ studies) and the surrogate (needs 10+ rows).

        Models that lack data stay ``None``; callers fall back to sampling the space.
        Fitting is deterministic, so models fitted on exactly the same experiences with
        the same settings are reused: within the process (a few recent fits are kept)
        and across processes, from the cache on disk (:mod:`llp.meta._cache`; its folder
        is ``$LLP_CACHE_DIR``, empty to turn it off). Studies that share a prior pay for
        it once. The experiences' :meth:`final_ranks` are kept with the fit and read back
        with it.
        """
        from llp.meta import _cache

        key = self._fit_key()
        cached = _FIT_CACHE.get(key) or _cache.load(key, self.space)
        if cached is None:
            self._fit_uncached()  # ranks the experiences too
            cached = (
                self.predictor_,
                self.surrogate_,
                dict(self.skipped_rows_),
                self._rank_table(),
            )
            _cache.save(key, *cached)
        else:
            self._use_rank_table(*cached[3])
        self.predictor_, self.surrogate_, skipped, _ = cached
        self.skipped_rows_ = dict(skipped)
        _FIT_CACHE[key] = cached
        while len(_FIT_CACHE) > _FIT_CACHE_SIZE:
            _FIT_CACHE.pop(next(iter(_FIT_CACHE)))
        return self

    def _fit_key(self) -> str:
        from llp.meta._cache import key_salt

        digest = hashlib.sha256(key_salt().encode())
        settings = (
            self.space.to_dict(),
            self.top_k,
            self.use_dataset_features,
            self.use_training_features,
            self.use_landscape_features,
            self.min_coverage,
            self.n_estimators,
            self.random_state,
        )
        digest.update(repr(settings).encode())
        # Everything the fit reads of an evaluation: its configuration, where and how it
        # ran and what it measured (a prior relabelled to other configurations, or with
        # other curves, must not find this one's models). Values that repeat (names,
        # seeds, meta-features, configurations, landscapes) enter once, in the order met,
        # and each evaluation as their indices and its numbers, in two arrays: printing
        # 60,000 evaluations one by one took most of a warm `llp predict`. Experiences
        # and results keep read-only views as given, so the evaluations of one dataset
        # or configuration share one mapping, whose text is made once.
        index: dict[Any, int] = {}
        texts: dict[int, tuple[Any, int]] = {}

        def at(value: Any) -> int:
            found = index.get(value)
            if found is None:
                found = index[value] = len(index)
            return found

        def text(mapping: Mapping[str, Any], make: Any) -> int:
            known = texts.get(id(mapping))
            if known is None or known[0] is not mapping:
                known = texts[id(mapping)] = (mapping, at(make(mapping)))
            return known[1]

        def ordered(mapping: Mapping[str, Any]) -> str:
            return repr(sorted(mapping.items()))

        def config_text(config: Mapping[str, Any]) -> str:
            return repr(self._projections.key(config))

        whole: list[tuple[int, ...]] = []
        real: list[tuple[float, ...]] = []
        # Named experiences (name_experiences) enter as (position here, source, position
        # there), their sources as digests, in the order they are first met.
        named: list[tuple[int, int, int]] = []
        sources: dict[int, int] = {}
        for here, exp in enumerate(self.experiences):
            known = _NAMED.get(id(exp))
            if known is not None and known[0] is exp and known[1] in _NAMED_SOURCES:
                named.append((here, sources.setdefault(known[1], len(sources)), known[2]))
                continue
            result = exp.result
            curve = result.curve
            losses = (
                curve.column("train_loss")
                if isinstance(curve, Curve)
                else tuple(p.train_loss for p in curve)
            )
            whole.append(
                (
                    here,
                    at(exp.dataset),
                    at(exp.study),
                    exp.trial,
                    at(exp.model_family),
                    result.fidelity.epochs,
                    at(result.seed),
                    text(exp.meta_features, ordered),
                    exp.halving,
                    text(result.config, config_text),
                    result.status is EvaluationStatus.COMPLETE,
                    len(losses),
                    text(result.landscape, ordered),
                    result.score is None,
                )
            )
            real.append(
                (
                    result.fidelity.fraction,
                    math.nan if result.score is None else result.score,
                    result.cost,
                    losses[-1] if losses else math.nan,
                )
            )
        # The counts first: the arrays' bytes follow one another undelimited.
        digest.update(repr((len(named), len(whole))).encode())
        digest.update(repr([_NAMED_SOURCES[source] for source in sources]).encode())
        digest.update(np.array(named, dtype=np.int64).tobytes())
        digest.update(np.array(whole, dtype=np.int64).tobytes())
        digest.update(np.array(real, dtype=np.float64).tobytes())
        digest.update(repr(list(index)).encode())
        return digest.hexdigest()

    def _fit_uncached(self) -> None:
        X, Y, w = self.predictor_training_set()
        self.predictor_ = None
        if X.shape[0] >= 2 and len({e.study for e in self.experiences}) >= 2:
            self.predictor_ = HyperparameterPredictor(
                self.space,
                n_estimators=self.n_estimators,
                n_jobs=self.n_jobs,
                random_state=self.random_state,
            ).fit(X, Y, sample_weight=w)
        Xs, ys, _ = self.surrogate_training_set()
        self.surrogate_ = None
        if Xs.shape[0] >= 10 and np.ptp(ys) > 0:
            self.surrogate_ = PerformanceSurrogate(
                n_estimators=self.n_estimators, n_jobs=self.n_jobs, random_state=self.random_state
            ).fit(Xs, ys)

    # ------------------------------------------------------------------ using
    def predict_final(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted final percentile rank and its uncertainty for surrogate rows."""
        if self.surrogate_ is None:
            raise ValueError("The surrogate is not fitted (too little experience); call fit().")
        mean, std = self.surrogate_.predict(np.atleast_2d(rows), return_std=True)
        return np.asarray(mean), np.asarray(std)

    def portfolio(
        self, model_family: str | None, n: int, *, same_family: bool = True
    ) -> list[dict[str, Any]]:
        """The ``n`` past configurations with the best mean final rank across the prior's
        studies (of ``model_family`` when there are any and ``same_family``): strong
        defaults that need no meta-features at all. Only configurations tried in 2+
        studies count."""
        return [c for c, _ in self.ranked_portfolio(model_family, n, same_family=same_family)]

    def ranked_portfolio(
        self, model_family: str | None, n: int, *, same_family: bool = True, greedy: bool = False
    ) -> list[tuple[dict[str, Any], float]]:
        """:meth:`portfolio` with each configuration's mean final percentile rank (1 =
        best in every study): the prior's score of it on a new dataset.

        With ``greedy`` the first is still the best mean rank, and each next one is the
        configuration that most raises the mean, over the prior's studies, of the best
        percentile rank any member reached in that study: a portfolio whose members
        cover one another's poor datasets rather than ``n`` alike configurations. On
        corpus v1 (shipped until 2026-12-06), leave-one-group-out, the greedy
        portfolio's best member was no better than the mean-rank one's
        (``benchmarks/portfolio_logo.py``: 0.170 against 0.179 normalised regret for two
        members, 0.114 against 0.108 for four), so studies start from the mean-rank
        order; on corpus v2 the greedy one is better at every size (rank regret 0.059
        against 0.076 for four), but as the order of a study's prior configurations it
        did not help in ``benchmarks/compare.py`` (better on the dev tasks, worse on the
        test tasks with a wrong prior; BENCHMARKS.md), so studies still start from the
        mean-rank order."""
        configs, ranks, by_study = self._final_ranks(model_family, same_family)
        eligible = [k for k, r in ranks.items() if len(r) >= 2]
        eligible.sort(key=lambda k: (-float(np.mean(ranks[k])), k))
        if greedy:
            eligible = _greedy_order(eligible, by_study, n)
        return [(configs[k], float(np.mean(ranks[k]))) for k in eligible[:n]]

    def prior_candidates(
        self, meta_features: Mapping[str, float], model_family: str | None, n: int
    ) -> list[tuple[dict[str, Any], float | None, str]]:
        """The configurations a new study starts from, best first: ``(configuration,
        prior score, source)``.

        First the configurations measured in at least :data:`MIN_SUPPORT` of the prior's
        studies (of any family), by mean final rank (:meth:`ranked_portfolio`; the score
        is that rank; source ``"portfolio"``). A knowledge base of studies that each drew
        their own configurations (a team's own space) has few of those, so the rest are
        each earlier study's best configuration, by the surrogate's predicted final rank
        for this dataset (the score; ``None`` and the studies' order without a surrogate;
        source ``"best of a past study"``)."""
        configs, ranks, by_study = self._final_ranks(model_family, same_family=False)
        supported = [k for k, r in ranks.items() if len(r) >= MIN_SUPPORT]
        supported.sort(key=lambda k: (-float(np.mean(ranks[k])), k))
        out: list[tuple[dict[str, Any], float | None, str]] = [
            (configs[k], float(np.mean(ranks[k])), "portfolio") for k in supported[:n]
        ]
        if len(out) >= n:
            return out
        chosen = set(supported[:n])
        bests: list[str] = []
        for rows in by_study.values():
            scored = [(score, key) for key, score in rows if score is not None]
            if scored:
                key = max(scored, key=lambda sk: (sk[0], sk[1]))[1]
                if key not in chosen and key not in bests:
                    bests.append(key)
        predicted: dict[str, float | None] = dict.fromkeys(bests)
        if bests and self.surrogate_ is not None:
            X = np.vstack(
                [self.surrogate_row(meta_features, model_family, configs[k]) for k in bests]
            )
            mean, _ = self.predict_final(X)
            predicted = {k: float(m) for k, m in zip(bests, mean, strict=True)}
            bests.sort(key=lambda k: (-float(predicted[k] or 0.0), k))
        out += [(configs[k], predicted[k], "best of a past study") for k in bests]
        return out[:n]

    def study_models(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per earlier study with two or more final scores in this space: its
        configurations, encoded, and their final percentile ranks (failures 0), the data
        of its own model in :func:`llp.meta._weights.rank_weights`."""
        configs, _, by_study = self._final_ranks(None, same_family=False)
        # Each configuration encoded once: studies of one design share most of theirs.
        encoded: dict[str, np.ndarray] = {}
        models: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for study, rows in by_study.items():
            if len(rows) >= 2:
                for key, _ in rows:
                    if key not in encoded:
                        encoded[key] = self.space.encode(configs[key])
                X = np.vstack([encoded[key] for key, _ in rows])
                models[study] = (X, _quantiles([score for _, score in rows]))
        return models

    def _final_ranks(
        self, model_family: str | None, same_family: bool
    ) -> tuple[
        dict[str, dict[str, Any]],
        dict[str, list[float]],
        dict[str, list[tuple[str, float | None]]],
    ]:
        """Per configuration (by canonical JSON) that is a complete point of this space:
        the configuration, its final percentile rank in every study that measured it,
        and per study its ``(configuration, final rank)`` rows (:meth:`final_ranks`,
        ``None`` = failed; of ``model_family``'s studies when there are any and
        ``same_family``)."""
        by_study: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
        configs: dict[str, dict[str, Any]] = {}
        families = {e.study: e.model_family for e in self.experiences}
        wanted = (
            {st for st, fam in families.items() if fam == model_family} if same_family else set()
        )
        seen: set[tuple[str, str]] = set()
        for (study, _), (score, exp) in self.final_ranks().items():
            if wanted and study not in wanted:
                continue
            point = self._projection(exp.result.config).point
            if point is None:
                continue  # not a complete point of this space
            key, config = point
            if (study, key) in seen:
                continue  # a replicate: the configuration's rank is already in
            seen.add((study, key))
            if key not in configs:
                configs[key] = dict(config)  # the caller's own copy
            by_study[study].append((key, score))
        ranks: dict[str, list[float]] = defaultdict(list)
        for rows in by_study.values():
            for (key, _), q in zip(rows, _quantiles([score for _, score in rows])):
                ranks[key].append(float(q))
        return configs, ranks, by_study

    def zero_shot(
        self, meta_features: Mapping[str, float], model_family: str | None
    ) -> Suggestion | None:
        """The one configuration to use on a new dataset without any search.

        It is the configuration with the best mean final rank over *all* the prior's
        studies (:meth:`portfolio` across model families), with the surrogate's
        prediction for this dataset attached for information. Leave-one-group-out over
        corpus v1's 87 datasets (``benchmarks/zero_shot_logo.py``) this beat ranking the
        same candidates by the surrogate's per-dataset prediction (normalised regret
        0.254 against 0.274), the mean rank over the 10 nearest datasets in meta-feature
        space (0.276) and over the same model family only (0.260): with 62 dataset
        groups, dataset meta-features do not yet predict *which* configuration wins
        better than its average rank does (see BENCHMARKS.md). Where no configuration
        was measured in :data:`MIN_SUPPORT` studies, it is the earlier study's best
        configuration the surrogate ranks highest for this dataset
        (:meth:`prior_candidates`); the predictor's configuration when there is none of
        those either, and ``None`` when the prior is empty.
        """
        candidates = self.prior_candidates(meta_features, model_family, 1)
        if not candidates:
            if self.predictor_ is None:
                return None
            x = self.dataset_vector(meta_features, model_family)[None, :]
            config = self.predictor_.predict_configs(x)[0]
            return Suggestion(config, math.nan, math.nan, "predictor")
        config, _, source = candidates[0]
        pred = unc = math.nan
        if self.surrogate_ is not None:
            mean, std = self.predict_final(self.surrogate_row(meta_features, model_family, config))
            pred, unc = float(mean[0]), float(std[0])
        return Suggestion(config, pred, unc, source)

    def suggest(
        self,
        meta_features: Mapping[str, float],
        model_family: str | None,
        n: int,
        *,
        seed: int,
        n_candidates: int = 256,
        n_portfolio: int = 8,
    ) -> list[Suggestion]:
        """``n`` configurations for a new dataset, chosen for predicted quality and
        diversity.

        Candidates: the best past configurations (:meth:`portfolio`), the predictor's
        configuration, variations around it (perturbed with the predictor's
        uncertainty) and draws from the space. With a fitted surrogate they are ranked
        by its predicted final rank for this dataset; without one the portfolio comes
        first, then the predictor's configuration, then draws. Candidates too close to one
        already chosen are skipped.
        """
        check_int("n", n, min_value=0, owner="MetaModelTrainer.suggest")
        if n == 0:
            return []
        rng = np.random.default_rng(seed)
        candidates: list[tuple[dict[str, Any], str]] = [
            (c, "portfolio") for c in self.portfolio(model_family, n_portfolio)
        ]
        if self.predictor_ is not None:
            x = self.dataset_vector(meta_features, model_family)[None, :]
            mean, std = self.predictor_.predict_with_std(x)
            candidates.append((self.space.decode(mean[0]), "predictor"))
            for _ in range(n_candidates // 2):
                noisy = mean[0] + rng.normal(size=mean.shape[1]) * np.maximum(std[0], 0.05)
                candidates.append(
                    (self.space.decode(np.clip(noisy, 0.0, 1.0)), "predictor variation")
                )
        candidates += [(c, "space sample") for c in self.space.sample(n_candidates // 2, seed=seed)]
        if self.surrogate_ is not None:
            rows = np.vstack(
                [self.surrogate_row(meta_features, model_family, c) for c, _ in candidates]
            )
            pred, unc = self.predict_final(rows)
            order = np.argsort(-pred, kind="stable")
        else:
            pred, unc = np.full(len(candidates), np.nan), np.full(len(candidates), np.nan)
            order = np.arange(len(candidates))
        encoded = self.space.encode_many([c for c, _ in candidates])
        chosen: list[Suggestion] = []
        taken: list[np.ndarray] = []
        for i in order:
            if len(chosen) >= n:
                break
            if any(np.abs(encoded[i] - t).max() < 0.05 for t in taken):
                continue
            config, source = candidates[i]
            chosen.append(Suggestion(config, float(pred[i]), float(unc[i]), source))
            taken.append(encoded[i])
        return chosen


__all__ = ["MODEL_FAMILIES", "MetaModelTrainer", "Suggestion", "name_experiences"]


def _greedy_order(
    candidates: list[str], by_study: Mapping[str, list[tuple[str, float | None]]], n: int
) -> list[str]:
    """The first ``n`` of ``candidates`` (best mean rank first) in greedy portfolio order:
    the first kept, then each time the one that most raises the mean over studies of the
    best percentile rank of any member (a study where none was measured counts 0)."""
    if not candidates:
        return []
    index = {k: j for j, k in enumerate(candidates)}
    studies = list(by_study)
    q = np.zeros((len(studies), len(candidates)))
    for i, study in enumerate(studies):
        rows = by_study[study]
        for (key, _), rank in zip(rows, _quantiles([score for _, score in rows]), strict=True):
            j = index.get(key)
            if j is not None:
                q[i, j] = float(rank)
    chosen = [0]
    best = q[:, 0].copy()
    while len(chosen) < min(n, len(candidates)):
        gain = np.maximum(q, best[:, None]).mean(0)
        gain[chosen] = -np.inf
        j = int(np.argmax(gain))  # ties: the better mean rank (candidates' order)
        chosen.append(j)
        best = np.maximum(best, q[:, j])
    return [candidates[j] for j in chosen]
