"""What the meta-model learned: the feature importances of the study's performance
surrogate.

A MetaProbing study ranks with its prior's surrogate, fitted once before its first
evaluation and never refitted (:class:`llp.search.MetaGuidedScheduler` models the study's
own measurements with a forest of its own). The report shows that surrogate: it rebuilds
the prior from stored records as the study saw it (the shipped knowledge and/or the
knowledge base's other datasets, as the study's settings say, recorded before the study
began) with the study's settings, and fits it, which the cache of fitted meta-models
(:mod:`llp.meta._cache`) usually answers, since the search fitted the same models. A
study that ranked with no surrogate (another scheduler, no prior, or a prior too small to
fit one) gets one fitted here on its prior plus its evaluations *up to its last
promotion* (with every evaluation, only the few trials of the top rung would carry a
final score, which is often too little to fit), or every evaluation if that cannot be
fitted; the page says which. The knowledge base may have grown since the search, so the
report says how many evaluations and datasets the surrogate saw.

Reading the prior and its models takes seconds that a second report of the same study
would spend again for the same numbers. :func:`study_importances` keeps each report's
importances in the user's cache folder (:mod:`llp._cache`, subfolder ``importances``, at
most :data:`MAX_FILES` small JSON files), keyed by a digest of everything the refit reads:
llp's and scikit-learn's versions, the study's record and every one of its evaluations,
its dataset, the shipped knowledge file's bytes (when the study's prior includes it) and
the identity and time of every knowledge-base evaluation and the datasets' records (when
it includes the knowledge base). Any change to those is another key, so a kept answer is
never stale; a damaged or foreign file is ignored, refitted and replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from llp import __version__
from llp.report._collect import StudyData

if TYPE_CHECKING:
    from llp.meta import MetaModelTrainer
    from llp.store import KnowledgeBase

#: Groups of surrogate inputs, for colouring the importances.
GROUPS = ("dataset", "model family", "configuration", "learning curve", "landscape")
#: Version of the kept importances' layout and meaning (part of every key). 2: a
#: MetaProbing study's importances are its prior surrogate's, not a refit with its
#: evaluations.
FORMAT = 2
#: Kept importances at most (a few kilobytes each), the least recently used dropped first.
MAX_FILES = 64


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Importances:
        """The importances :meth:`to_json` wrote, checked field by field.

        Raises
        ------
        ValueError
            If a field is missing, of another type, or the lists disagree.
        """

        def texts(name: str) -> list[str]:
            value = data[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name!r} is not a list of strings")
            return value

        def count(name: str) -> int:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name!r} is not a count")
            return value

        values = data["values"]
        if not isinstance(values, list) or not all(
            isinstance(v, float) and math.isfinite(v) and v >= 0.0 for v in values
        ):
            raise ValueError("'values' is not a list of importances")
        names, groups = texts("names"), texts("groups")
        if not len(names) == len(groups) == len(values) or not set(groups) <= set(GROUPS):
            raise ValueError("names, groups and values do not match")
        fitted, basis, why = data["fitted"], data["basis"], data["why"]
        if not isinstance(fitted, bool) or not isinstance(basis, str) or not isinstance(why, str):
            raise ValueError("'fitted', 'basis' or 'why' has another type")
        return cls(
            fitted,
            basis=basis,
            names=names,
            groups=groups,
            values=values,
            n_evaluations=count("n_evaluations"),
            n_datasets=count("n_datasets"),
            sources=texts("sources"),
            why=why,
        )


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


def refit_importances(kb: KnowledgeBase, data: StudyData, n_jobs: int = 1) -> Importances:
    """The importances of the surrogate the study ranked with, or of one fitted here
    when it ranked with none (see the module docstring), from stored records
    (``n_jobs``: threads for a fit)."""
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
            n_jobs=n_jobs,
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
    if data.study.scheduler != "MetaProbing":
        why = f"its scheduler, {data.study.scheduler}, ranks with none"
    elif notes:
        why = "the prior it ranked with cannot be read here"
    elif not prior_trainer.experiences:
        why = "it ranked with none: no prior"
    else:
        prior_trainer.fit()  # the search's own fit, read back from the cache as a rule
        if prior_trainer.surrogate_ is not None:
            return _importances_of(
                prior_trainer,
                "the one the search ranked with: its prior's, fitted before the study's "
                "first evaluation",
                sources,
                notes,
            )
        why = "it ranked with none: its prior was too small to fit one"
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
        on = "the prior and " if prior_trainer.experiences else ""
        basis = f"fitted for this report on {on}{attempt} ({why})"
        trainer = MetaModelTrainer(space, random_state=int(data.study.seed), n_jobs=n_jobs, **flags)
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
    if trainer.surrogate_ is None:
        return Importances(
            False,
            n_evaluations=len(trainer.experiences),
            n_datasets=len(trainer.datasets),
            sources=sources,
            why="too little experience to fit the surrogate (it needs 10 rows with "
            "different final ranks)" + (f"; {'; '.join(notes)}" if notes else ""),
        )
    return _importances_of(trainer, basis, sources, notes)


def _importances_of(
    trainer: MetaModelTrainer, basis: str, sources: list[str], notes: list[str]
) -> Importances:
    """The fitted surrogate's importances, largest first."""
    import numpy as np

    assert trainer.surrogate_ is not None
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
        n_evaluations=len(trainer.experiences),
        n_datasets=len(trainer.datasets),
        sources=sources,
        why="; ".join(notes),
    )


def importances_key(kb: KnowledgeBase, data: StudyData) -> str:
    """A digest of everything :func:`refit_importances` reads for ``data`` (see the
    module docstring); it reads no result and imports nothing heavy."""
    from llp.knowledge import SHIPPED_CORPUS_PATH
    from llp.knowledge._parsed import file_key

    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        digest.update(json.dumps(value, sort_keys=True, default=str).encode())
        digest.update(b"\0")

    try:  # the forests' fit, read from the package's metadata (no import)
        sklearn_version = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        sklearn_version = None
    study = data.study
    feed(["llp-report-importances", FORMAT, __version__, sklearn_version])
    feed([study.name, study.created_at, study.seed, study.settings, study.space])
    feed([study.model_family, study.objective, study.scheduler])
    if data.dataset is not None:
        d = data.dataset
        feed([d.fingerprint, d.group, d.meta_features])
    feed([(e.id, e.created_at) for e in data.evaluations])
    prior = str(study.settings.get("prior", "store"))  # in the settings fed above
    if prior in ("default", "shipped"):
        shipped = SHIPPED_CORPUS_PATH
        feed(file_key(shipped) if shipped.is_file() else "no shipped knowledge")
    if prior in ("default", "store"):
        feed([(d.fingerprint, d.group, d.meta_features) for d in kb.list_datasets()])
        feed([stamp for stamp in kb.evaluation_stamps() if stamp[1] <= study.created_at])
    return digest.hexdigest()


def study_importances(
    kb: KnowledgeBase,
    data: StudyData,
    progress: Callable[[str], None] | None = None,
    n_jobs: int = 1,
) -> Importances:
    """The study's importances as :func:`refit_importances` gives them (with ``n_jobs``
    threads), kept from an earlier report of the same study and prior when there was one
    (see the module docstring); ``progress`` hears which."""
    from llp._cache import UNREADABLE, cache_dir, touch, write_atomic

    say = progress or (lambda _line: None)
    folder = cache_dir()
    key = importances_key(kb, data) if folder is not None else ""
    path = None if folder is None else folder / "importances" / f"{key}.json"
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored["format"] == FORMAT and stored["key"] == key:
                found = Importances.from_json(stored["importances"])
                touch(path)
                say("report: feature importances kept from an earlier report of this study")
                return found
        except UNREADABLE:
            pass  # damaged or foreign: refitted and replaced
    say("report: the meta-model's feature importances (reading its prior)")
    importances = refit_importances(kb, data, n_jobs)
    if path is not None:
        text = json.dumps({"format": FORMAT, "key": key, "importances": importances.to_json()})
        write_atomic(path, lambda handle: handle.write(text.encode()), keep=MAX_FILES)
    return importances


__all__ = [
    "GROUPS",
    "Importances",
    "importances_key",
    "refit_importances",
    "study_importances",
    "surrogate_feature_names",
]
