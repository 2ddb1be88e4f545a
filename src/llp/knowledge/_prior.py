"""The meta-model's prior for one study, assembled in one place.

:class:`~llp.meta_probing.MetaProbing` fits it before a study, the report refits it to
show what the study's surrogate read, and ``llp tune`` and ``llp predict`` reach it
through them: all call :func:`build_prior`, so the three can no longer disagree on what
the prior holds.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from llp.meta import MetaModelTrainer
    from llp.space import SearchSpace
    from llp.store import KnowledgeBase

#: Where a prior's experience may come from (``MetaProbing(prior=...)``).
PriorKind = Literal["default", "shipped", "store", "none"]
PRIOR_KINDS: tuple[str, ...] = ("default", "shipped", "store", "none")

#: The feature flags of a study's settings and their defaults.
FEATURE_FLAGS: tuple[str, ...] = (
    "use_dataset_features",
    "use_training_features",
    "use_landscape_features",
)


@dataclass(frozen=True)
class Prior:
    """An unfitted meta-model trainer holding the prior's experience, and where the
    experience came from (``"shipped knowledge"``, ``"knowledge base"``)."""

    trainer: MetaModelTrainer
    sources: tuple[str, ...]


def prior_flags(settings: Mapping[str, Any]) -> dict[str, bool]:
    """The meta-model's feature flags for a study with these settings. Landscape
    features are read only when the study measures them (``measure_flatness``): without
    probes its own rows carry none, and the surrogate would read "missing" as a signal."""
    flags = {k: bool(settings.get(k, True)) for k in FEATURE_FLAGS}
    flags["use_landscape_features"] = flags["use_landscape_features"] and bool(
        settings.get("measure_flatness", False)
    )
    return flags


def build_prior(
    space: SearchSpace,
    *,
    prior: str,
    knowledge_base: KnowledgeBase | None = None,
    exclude_datasets: Iterable[str] = (),
    exclude_groups: Iterable[str] = (),
    recorded_before: datetime.datetime | None = None,
    flags: Mapping[str, bool] | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
) -> Prior:
    """The prior of a study, not yet fitted.

    Parameters
    ----------
    space : SearchSpace
        The study's space (the meta-model encodes configurations in it).
    prior : {"default", "shipped", "store", "none"}
        ``"default"``: the shipped knowledge and the knowledge base; ``"shipped"`` or
        ``"store"``: one of them; ``"none"``: no experience.
    knowledge_base : KnowledgeBase, optional
        Read for ``"default"`` and ``"store"`` (skipped when ``None``).
    exclude_datasets, exclude_groups
        Fingerprints (or shipped names) and dataset groups left out: the study's own
        dataset, and groups a benchmark holds out.
    recorded_before : datetime, optional
        Only knowledge-base evaluations written up to then: a resumed study sees the
        prior it started with (its creation time), or it would propose other
        configurations than the ones it stored.
    flags : mapping, optional
        The trainer's feature flags (:func:`prior_flags`).
    seed : int
        The trainer's ``random_state``.
    n_jobs : int, optional
        Threads its fit may use (:class:`~llp.meta.MetaModelTrainer`).
    """
    from llp.meta import MetaModelTrainer

    if prior not in PRIOR_KINDS:
        raise ValueError(
            f"The 'prior' parameter must be one of {', '.join(map(repr, PRIOR_KINDS))}. "
            f"Got {prior!r} instead."
        )
    trainer = MetaModelTrainer(space, random_state=seed, n_jobs=n_jobs, **dict(flags or {}))
    skip_datasets, skip_groups = tuple(exclude_datasets), tuple(exclude_groups)
    sources: list[str] = []
    if prior in ("default", "shipped"):
        from llp.knowledge import load_shipped_experiences

        trainer.add(
            load_shipped_experiences(exclude_groups=skip_groups, exclude_datasets=skip_datasets)
        )
        sources.append("shipped knowledge")
    if prior in ("default", "store") and knowledge_base is not None:
        trainer.add_from_store(
            knowledge_base,
            exclude_datasets=skip_datasets,
            exclude_groups=skip_groups,
            recorded_before=recorded_before,
        )
        sources.append("knowledge base")
    return Prior(trainer, tuple(sources))


__all__ = ["FEATURE_FLAGS", "PRIOR_KINDS", "Prior", "PriorKind", "build_prior", "prior_flags"]
