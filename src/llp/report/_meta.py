"""What the meta-model learned: the performance surrogate refitted for a stored study.

The search refits its surrogate between iterations and keeps no model (the knowledge
base stores records, never pickles). The report refits it the same way from stored
records: the study's prior (the shipped knowledge and/or the knowledge base's other
datasets, as the study's settings say) plus the study's evaluations *up to its last
promotion* -- what the search knew when it made its last decision. (With every
evaluation, only the few trials of the top rung would carry a final score, which is
often too little to fit.) If that cannot be fitted, every evaluation is used. The
knowledge base may have grown since the search, so the report says how many evaluations
and datasets the refit saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llp.report._collect import StudyData

if TYPE_CHECKING:
    from llp.meta import MetaModelTrainer
    from llp.store import KnowledgeBase

#: Groups of surrogate inputs, for colouring the importances.
GROUPS = ("dataset", "model family", "configuration", "learning curve", "landscape")


@dataclass(frozen=True)
class Importances:
    """Feature importances of the refitted surrogate, largest first.

    ``fitted`` is false when there was too little experience to fit one; ``why`` says so.
    """

    fitted: bool
    basis: str = ""
    names: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    n_evaluations: int = 0
    n_datasets: int = 0
    sources: list[str] = field(default_factory=list)
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "fitted": self.fitted,
            "basis": self.basis,
            "names": self.names,
            "groups": self.groups,
            "values": self.values,
            "n_evaluations": self.n_evaluations,
            "n_datasets": self.n_datasets,
            "sources": self.sources,
            "why": self.why,
        }


def surrogate_feature_names(trainer: MetaModelTrainer) -> list[tuple[str, str]]:
    """``(name, group)`` of every input column of the trainer's surrogate, in the order
    :meth:`MetaModelTrainer.surrogate_row` assembles them."""
    from llp.features import DATASET_FEATURES, TRAINING_FEATURES
    from llp.meta import MODEL_FAMILIES

    names: list[tuple[str, str]] = []
    if trainer.use_dataset_features:
        names += [(f"dataset: {n}", "dataset") for n in DATASET_FEATURES]
    names += [(f"family = {f}", "model family") for f in MODEL_FAMILIES]
    names += [(f"config: {n}", "configuration") for n in trainer.space.names]
    if trainer.use_training_features:
        for n in TRAINING_FEATURES:
            group = "landscape" if n.startswith("landscape_") else "learning curve"
            names.append((f"partial: {n}", group))
        names += [
            ("partial: result available", "learning curve"),
            ("partial: rank within its rung", "learning curve"),
        ]
    return names


def refit_importances(kb: KnowledgeBase, data: StudyData) -> Importances:
    """Refit the study's surrogate from stored records and read its importances."""
    import numpy as np

    from llp.knowledge import build_prior, prior_flags
    from llp.meta import Experience, MetaModelTrainer
    from llp.space import SearchSpace

    settings: Mapping[str, Any] = data.study.settings
    if data.study.space is None:
        return Importances(False, why="the study stored no search space")
    space = SearchSpace.from_dict(data.study.space)
    # The study's own flags: landscape features only if it measured them.
    flags = prior_flags(settings)
    fingerprint = data.dataset.fingerprint if data.dataset is not None else None
    prior = str(settings.get("prior", "store"))
    notes: list[str] = []

    def assemble(kind: str) -> Any:
        # As the study saw it: what the knowledge base held when the study was created
        # (what MetaProbing read then), not what was added later.
        return build_prior(
            space,
            prior=kind,
            knowledge_base=kb,
            exclude_datasets=(fingerprint,) if fingerprint else (),
            exclude_groups=tuple(settings.get("exclude_groups", ()) or ()),
            recorded_before=data.study.created_at,
            flags=flags,
            seed=int(data.study.seed),
        )

    try:
        built = assemble(prior)
    except (ImportError, FileNotFoundError, ValueError) as exc:
        notes.append(f"shipped knowledge unavailable ({type(exc).__name__})")
        built = assemble("store" if prior == "default" else "none")
    prior_trainer = built.trainer
    sources = [
        "knowledge base (other datasets, as of the study's start)" if s == "knowledge base" else s
        for s in built.sources
    ]
    sources.append("this study")
    dataset_key = fingerprint or data.study.name
    meta = dict(data.dataset.meta_features) if data.dataset is not None else {}
    top = max((e.fidelity.fraction for e in data.evaluations), default=0.0)
    first_top = next(
        (i for i, e in enumerate(data.evaluations) if e.fidelity.fraction == top),
        len(data.evaluations),
    )
    attempts = [
        ("the study's evaluations up to its last promotion", data.evaluations[:first_top]),
        ("all the study's evaluations", data.evaluations),
    ]
    trainer, basis = prior_trainer, ""
    for attempt, evaluations in attempts:
        if not evaluations:
            continue
        basis = attempt
        trainer = MetaModelTrainer(space, random_state=int(data.study.seed), **flags)
        trainer.experiences = list(prior_trainer.experiences)
        trainer.add(
            Experience(
                dataset_key, None, meta, data.study.model_family, data.study.name,
                e.trial_number, e.result,
            )
            for e in evaluations
        )  # fmt: skip
        trainer.fit()
        if trainer.surrogate_ is not None:
            break
    n_evaluations, n_datasets = len(trainer.experiences), len(trainer.datasets)
    if trainer.surrogate_ is None:
        return Importances(
            False,
            n_evaluations=n_evaluations,
            n_datasets=n_datasets,
            sources=sources,
            why="too little experience to fit the surrogate (it needs 10 rows with "
            "different final ranks)" + (f"; {'; '.join(notes)}" if notes else ""),
        )
    values = np.asarray(trainer.surrogate_.feature_importances_, dtype=float)
    named = surrogate_feature_names(trainer)
    if len(named) != values.shape[0]:  # a layout this report does not know: keep numbers
        named = [(f"feature {i}", "configuration") for i in range(values.shape[0])]
    order = np.argsort(-values, kind="stable")
    return Importances(
        True,
        basis=basis,
        names=[named[i][0] for i in order],
        groups=[named[i][1] for i in order],
        values=[float(values[i]) for i in order],
        n_evaluations=n_evaluations,
        n_datasets=n_datasets,
        sources=sources,
        why="; ".join(notes),
    )


__all__ = ["GROUPS", "Importances", "refit_importances", "surrogate_feature_names"]
