"""``llp tune``: meta-guided multi-fidelity search on a dataset, stored in a knowledge base."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from llp._digest import short_digest
from llp.cli._data import LoadedData, dropped_note, load_data
from llp.cli._defaults import TUNE_DEFAULTS
from llp.cli._errors import EXIT_NOTHING_USABLE, CliError, Terminated, one_line
from llp.cli._plan import BudgetTooSmall, Plan, plan_schedule, probe_cost_per_evaluation
from llp.cli._spaces import default_space, read_space_file, starting_configs
from llp.cli._storage import (
    missing_sqlite_file,
    open_knowledge_base,
    report_folder,
    resolve_storage,
)

if TYPE_CHECKING:
    from llp.data import FidelityData
    from llp.meta_probing import MetaProbingResult
    from llp.space import SearchSpace
    from llp.store import KnowledgeBase

DEFAULTS = TUNE_DEFAULTS


@dataclass(frozen=True)
class TuneOptions:
    """The options of ``llp tune`` (see ``llp tune --help``)."""

    data: str
    target: str | None = None
    family: str = DEFAULTS["family"]
    space: str | None = None
    budget: float = DEFAULTS["budget"]
    epochs: int = DEFAULTS["epochs"]
    #: ``None``: the default, or fewer where the data is too small for it.
    iterations: int | None = None
    reduction_factor: int = DEFAULTS["reduction_factor"]
    storage: str | None = None
    study: str | None = None
    resume: bool = False
    seed: int = DEFAULTS["seed"]
    workers: int = DEFAULTS["workers"]
    dask_address: str | None = None
    prior: str = DEFAULTS["prior"]
    flatness: bool = DEFAULTS["flatness"]
    report: bool = True
    report_dir: str | None = None


@dataclass(frozen=True)
class TuneOutcome:
    """What ``llp tune`` found; :meth:`to_json` is the ``--json`` output."""

    study: str
    storage: str
    resumed: bool
    data: LoadedData
    fingerprint: str
    plan: Plan
    result: MetaProbingResult
    prior_used: str
    report: Path | None
    report_error: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: The whole search, the meta-model's prior and fits included (the study's own
    #: ``wall_seconds`` counts the evaluations only).
    search_seconds: float | None = None
    #: Writing the report after the search (``None`` without one).
    report_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        study = self.result.study
        best = study.best_evaluation
        prior = self.result.prior
        return {
            "study": self.study,
            "storage": self.storage,
            "resumed": self.resumed,
            "data": _data_json(self.data, self.fingerprint),
            "family": self.data.recipe.family,
            "objective": study.objective,
            "best_config": dict(study.best_config),
            "best_score": study.best_score,
            "best_resource": best.resource,
            "best_trial": best.trial_id,
            "answer_rule": None if study.answer is None else study.answer.rule,
            "answer_note": self.result.answer_note,
            "stop_reason": self.result.stop_reason,
            "budget_saved": self.result.budget_saved,
            "sources": {str(k): v for k, v in self.result.sources.items()},
            "n_evaluations": len(study.evaluations),
            "n_failed": study.n_failed,
            "n_reused": study.n_reused,
            "total_cost": study.total_cost,
            "wall_seconds": study.wall_seconds,
            "search_seconds": self.search_seconds,
            "report_seconds": self.report_seconds,
            "plan": {
                "num_initial_configs": self.plan.num_initial_configs,
                "rungs": list(self.plan.rungs),
                "epochs": self.plan.epochs,
                "reduction_factor": self.plan.reduction_factor,
                "n_evaluations": self.plan.n_jobs,
                "cost": self.plan.cost,
                "budget": self.plan.budget,
                "brackets": self.plan.brackets,
            },
            "prior": {
                "requested": self.prior_used,
                "sources": list(prior.sources),
                "n_evaluations": prior.n_evaluations,
                "n_datasets": prior.n_datasets,
                "predictor_fitted": prior.predictor_fitted,
                "surrogate_fitted": prior.surrogate_fitted,
            },
            "zero_shot_config": self.result.zero_shot_config,
            "prior_weights": None
            if self.result.prior_weights is None
            else self.result.prior_weights.to_json(),
            "report": None if self.report is None else str(self.report),
            "report_error": self.report_error,
            "notes": list(self.notes),
        }


def _data_json(data: LoadedData, fingerprint: str) -> dict[str, Any]:
    """The ``data`` entry of ``llp tune --json``."""
    return {
        "name": data.name,
        "description": data.description,
        "fingerprint": fingerprint,
        "recipe": data.recipe.to_dict(),
    }


@dataclass(frozen=True)
class ZeroShotOutcome:
    """``llp tune`` with a budget below one evaluation: the meta-model's pick for the
    dataset, not measured (nothing was trained or stored)."""

    storage: str
    data: LoadedData
    fingerprint: str
    budget: float
    cheapest: float
    recommendation: dict[str, Any]
    sources: tuple[str, ...]
    n_prior_evaluations: int
    n_prior_datasets: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    report: Path | None = None
    report_error: str | None = None

    @property
    def study(self) -> None:
        return None

    @property
    def answer_note(self) -> str:
        rec = self.recommendation
        expected = rec.get("expected_score")
        return (
            f"the budget of {self.budget:g} full-data epochs cannot pay for one evaluation "
            f"({self.cheapest:g}): this is the meta-model's pick for this dataset, not "
            f"measured (predicted rank {rec['predicted_rank']:.2f}"
            + (f"; about {expected:.3f} on the most similar past datasets" if expected else "")
            + "); nothing was trained or stored"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "study": None,
            "storage": self.storage,
            "resumed": False,
            "data": _data_json(self.data, self.fingerprint),
            "family": self.data.recipe.family,
            "objective": "val_accuracy",
            "best_config": dict(self.recommendation["config"]),
            "best_score": None,
            "best_resource": None,
            "best_trial": None,
            "answer_rule": "zero-shot",
            "answer_note": self.answer_note,
            "stop_reason": "the budget cannot pay for one evaluation",
            "budget_saved": self.budget,
            "sources": {},
            "n_evaluations": 0,
            "n_failed": 0,
            "n_reused": 0,
            "total_cost": 0.0,
            "plan": {
                "budget": self.budget,
                "n_evaluations": 0,
                "cheapest_evaluation": self.cheapest,
            },
            "prior": {
                "n_evaluations": self.n_prior_evaluations,
                "n_datasets": self.n_prior_datasets,
                "sources": list(self.sources),
            },
            "zero_shot_config": dict(self.recommendation["config"]),
            "expected_score": self.recommendation.get("expected_score"),
            "report": None,
            "report_error": None,
            "notes": list(self.notes),
        }


def zero_shot_answer(
    loaded: LoadedData,
    space: SearchSpace,
    options: TuneOptions,
    prior: str,
    small: BudgetTooSmall,
    *,
    note: Callable[[str], None],
) -> ZeroShotOutcome:
    """The meta-model's pick for the dataset when the budget cannot train anything
    (the prediction ``llp predict`` makes); refuses with the budget's message when there
    is no prior to predict from."""
    from llp.cli._predict import recommend

    if prior == "none":
        raise CliError(f"{small} With --prior none there is no prediction to answer with.")
    try:
        found = recommend(
            loaded,
            space=space,
            storage=options.storage,
            prior=prior,
            seed=options.seed,
            n_configs=1,
            n_neighbours=3,
            note=note,
        )
    except CliError as exc:
        raise CliError(f"{small} There is no prediction to answer with either: {exc}") from exc
    note(
        f"the budget of {options.budget:g} full-data epochs cannot pay for one evaluation "
        f"({small.cheapest:g}): answering with the meta-model's pick, without training"
    )

    return ZeroShotOutcome(
        storage=resolve_storage(options.storage),
        data=loaded,
        fingerprint=found["data"]["fingerprint"],
        budget=options.budget,
        cheapest=small.cheapest,
        recommendation=found["recommendations"][0],
        sources=tuple(found["sources"]),
        n_prior_evaluations=int(found["n_evaluations"]),
        n_prior_datasets=int(found["n_datasets"]),
    )


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while an interrupted study cleans up (ends its workers,
    counts what is stored): a second Ctrl-C must not cut that short, or the resume line
    would be lost."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def terminate_like_ctrl_c() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt):
    the study stops as on Ctrl-C, its workers end, and the resume line is printed."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class TuneInterrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped ``llp tune``; what is stored and how to go on.

    ``next_step`` is the advice, e.g. ``"resume with: llp tune ... --resume"``;
    ``terminated`` is true for SIGTERM (exit status 143 instead of 130).
    """

    def __init__(
        self, study: str, n_stored: int, storage: str, next_step: str, *, terminated: bool = False
    ) -> None:
        super().__init__(study)
        self.study = study
        self.n_stored = n_stored
        self.storage = storage
        self.next_step = next_step
        self.terminated = terminated

    def message(self) -> str:
        return (
            f"{'terminated' if self.terminated else 'interrupted'}: "
            f"{self.n_stored} evaluation{'s' if self.n_stored != 1 else ''} of "
            f"study {self.study!r} {'are' if self.n_stored != 1 else 'is'} stored in "
            f"{self.storage}; {self.next_step}"
        )


def settings_digest(
    loaded: LoadedData, space: SearchSpace, plan: Plan, options: TuneOptions, prior: str
) -> str:
    """Eight hex digits that change whenever the search would change (``prior`` is the
    one actually used, after a fall-back)."""
    key = {
        "recipe": loaded.recipe.to_dict(),
        "space": space.to_dict(),
        "plan": [plan.num_initial_configs, list(plan.rungs), plan.epochs, plan.reduction_factor],
        "budget": plan.budget,
        "seed": options.seed,
        "prior": prior,
        "flatness": options.flatness,
    }
    return short_digest(json.dumps(key, sort_keys=True))


def name_chain(base: str) -> list[str]:
    """The default names of runs with the same settings: ``base``, ``base-2``, ..."""
    return [base] + [f"{base}-{k}" for k in range(2, 1000)]


def choose_study_name(
    kb: KnowledgeBase, base: str, options: TuneOptions, note: Callable[[str], None]
) -> tuple[str, bool]:
    """``(name, resumed)``.

    Without ``--study`` the name is ``base`` (data, family, digest of the settings); a
    later run with the same settings gets ``base-2``, ``base-3``... and ``--resume``
    continues the latest of them. With ``--study`` that name is used; an existing study
    is continued only with ``--resume``.
    """
    if options.study is not None:
        name = options.study.strip()
        if not name:
            raise CliError("The '--study' option must be a non-empty name. Got '' instead.")
        stored = kb.get_study(name)
        if stored is not None and not options.resume:
            n = len(kb.evaluations(study=name))
            raise CliError(
                f"The study {name!r} already exists in {kb.storage} ({n} evaluations); add "
                "--resume to continue it, or give another --study name."
            )
        if stored is None and options.resume:
            note(f"there is no study {name!r} to resume yet; starting it")
        return name, stored is not None
    chain = name_chain(base)
    existing = [n for n in chain if kb.get_study(n) is not None]
    if options.resume:
        if existing:
            return existing[-1], True
        note(f"there is no earlier run of these settings ({base}) to resume; starting it")
        return base, False
    free = next(n for n in chain if n not in existing)
    return free, False


def next_study_name(kb: KnowledgeBase, base: str, taken: str) -> str:
    """The first free name of ``base``'s chain (``base-2``, ``base-3``...) after ``taken``."""
    chain = name_chain(base)
    later = chain[chain.index(taken) + 1 :] if taken in chain else chain
    return next(n for n in later if kb.get_study(n) is None)


def resume_command(options: TuneOptions, study: str) -> str:
    """The command line that continues ``study`` with the same settings."""
    parts = ["llp", "tune", options.data]
    flags = {
        "target": "--target",
        "family": "--family",
        "space": "--space",
        "budget": "--budget",
        "epochs": "--epochs",
        "iterations": "--iterations",
        "reduction_factor": "--reduction-factor",
        "seed": "--seed",
        "workers": "--workers",
        "dask_address": "--dask-address",
        "prior": "--prior",
        "storage": "--storage",
    }
    for attr, flag in flags.items():
        value = getattr(options, attr)
        if value is None or value == DEFAULTS.get(attr):
            continue
        parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if not options.flatness:
        parts.append("--no-flatness")
    parts += ["--study", study, "--resume"]
    return " ".join(shlex.quote(p) for p in parts)


def _shipped_knowledge_problem() -> str | None:
    """Why the shipped knowledge cannot be used, or ``None`` when it can."""
    try:
        from llp.knowledge import load_shipped_experiences

        load_shipped_experiences()
    except (ImportError, FileNotFoundError):
        return "the shipped knowledge is not installed with this llp"
    except ValueError as exc:
        return f"the shipped knowledge cannot be read ({one_line(str(exc))})"
    return None


Prior = Literal["default", "shipped", "store", "none"]
_PRIORS: tuple[Prior, ...] = ("default", "shipped", "store", "none")


def resolve_prior(prior: str, note: Callable[[str], None]) -> Prior:
    """The prior MetaProbing can use: ``default`` falls back to the knowledge base alone
    when the shipped knowledge is missing; asking for ``shipped`` then is an error."""
    chosen = next((p for p in _PRIORS if p == prior), None)
    if chosen is None:
        raise CliError(
            "The '--prior' option must be one of 'default', 'shipped', 'store', 'none'. "
            f"Got {prior!r} instead."
        )
    if chosen in ("default", "shipped"):
        problem = _shipped_knowledge_problem()
        if problem is not None:
            if chosen == "shipped":
                raise CliError(f"The '--prior' option 'shipped' cannot be used: {problem}.")
            note(f"{problem}; the meta-model starts from the knowledge base alone")
            return "store"
    return chosen


def model_builder(family: str, data: FidelityData) -> Callable[[Any], Any]:
    """``model_fn(config)`` of the family for this data (picklable, for worker processes)."""
    from llp.knowledge import make_cnn, make_mlp, make_resmlp

    n_classes = data.n_classes or 1
    if family == "cnn":
        return functools.partial(make_cnn, input_shape=data.input_shape, n_classes=n_classes)
    build = make_resmlp if family == "resmlp" else make_mlp
    return functools.partial(build, n_features=int(data.input_shape[0]), n_classes=n_classes)


def fit_iterations(
    iterations: int | None, reduction_factor: int, n_train: int, n_classes: int | None
) -> tuple[int, str | None]:
    """The rungs to use, and a note when the default was lowered: the smallest rung must
    hold at least one training example per class (and two). ``None`` asks for the default,
    lowered to fit the data; more rungs than fit, asked for, are an error."""
    need = max(n_classes or 1, 2)
    most = 1
    while n_train / reduction_factor**most >= need:
        most += 1
    if iterations is None:
        default = int(DEFAULTS["iterations"])
        if default <= most:
            return default, None
        return most, (
            f"{most} rung(s), not {default}: with {n_train} training examples and "
            f"--reduction-factor {reduction_factor}, a smaller first rung would hold fewer "
            "than one example per class"
        )
    if iterations > most:
        smallest = n_train / reduction_factor ** (iterations - 1)
        raise CliError(
            f"The '--iterations' option must be at most {most} for {n_train} training "
            f"examples and --reduction-factor {reduction_factor}: with {iterations} the "
            f"smallest rung would hold {smallest:.3g} examples, fewer than one per class. "
            f"Got {iterations} instead."
        )
    return iterations, None


def stored_settings(options: TuneOptions) -> Mapping[str, Any] | None:
    """On ``--resume`` of a named study that exists, the settings it was created with;
    else ``None``."""
    if not options.resume or options.study is None:
        return None
    if missing_sqlite_file(resolve_storage(options.storage)):
        return None  # nothing stored yet
    kb = open_knowledge_base(options.storage)
    try:
        stored = kb.get_study(options.study.strip())
    finally:
        kb.close()
    return None if stored is None else stored.settings


def stored_iterations(options: TuneOptions, stored: Mapping[str, Any] | None) -> int | None:
    """``--iterations`` as asked; when left out on ``--resume`` of a study that exists
    (``stored``: its settings), the rungs it was created with (a study made under
    another default, 3 until 2026-12-07, resumes with the command it printed); ``None``
    for the default."""
    if options.iterations is not None or stored is None:
        return options.iterations
    # The plan's smallest rung is 1 / reduction_factor ** (iterations - 1) whatever the
    # budget (a small one drops top rungs, not the smallest), so it gives the rungs asked.
    r_min = stored.get("min_resource")
    eta = options.reduction_factor
    if not isinstance(r_min, float) or not 0.0 < r_min <= 1.0:
        return None
    k = round(math.log(1.0 / r_min) / math.log(eta)) + 1
    return k if math.isclose(float(eta) ** (1 - k), r_min) else None


def stored_first_bracket(stored: Mapping[str, Any] | None) -> int | None:
    """The first bracket a resumed study was planned with (a study planned under
    another rule, before 2026-12-07, resumes with the command it printed)."""
    n = None if stored is None else stored.get("num_initial_configs")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None


def run_tune(
    options: TuneOptions,
    *,
    note: Callable[[str], None],
    progress_factory: Callable[[int | None], Any],
) -> TuneOutcome | ZeroShotOutcome:
    """Run ``llp tune`` (a :class:`ZeroShotOutcome` when the budget cannot pay for one
    evaluation).

    Parameters
    ----------
    options : TuneOptions
    note : callable
        Receives one-line remarks for the person at the terminal.
    progress_factory : callable
        ``progress_factory(n_planned)`` returns a context manager that is also the
        progress callback (:class:`llp.cli._progress.TuneProgress`).

    Raises
    ------
    CliError
        For user mistakes (exit 2) and for a study in which every evaluation failed
        (exit 1).
    TuneInterrupted
        On Ctrl-C, after everything finished before it is stored.
    """
    # Remarks wait until every input is checked, so that a mistake prints one line only.
    pending: list[str] = []
    remarks: list[str] = []  # every remark, also kept for --json
    emit = note

    def say(text: str) -> None:
        remarks.append(text)
        emit(text)

    note = pending.append
    loaded = load_data(options.data, target=options.target, family=options.family)
    data = loaded.fidelity_data(seed=options.seed)
    note(loaded.description)
    dropped = dropped_note(data)
    if dropped is not None:
        note(dropped)
    stored_study = stored_settings(options)
    iterations, lowered = fit_iterations(
        stored_iterations(options, stored_study),
        options.reduction_factor,
        data.n_train,
        data.n_classes,
    )
    if lowered is not None:
        note(lowered)
    space = read_space_file(options.space) if options.space else default_space()
    prior = resolve_prior(options.prior, note)
    try:
        plan = plan_schedule(
            options.budget,
            epochs=options.epochs,
            iterations=iterations,
            reduction_factor=options.reduction_factor,
            probe_cost=probe_cost_per_evaluation(data.n_train, measure_flatness=options.flatness),
            with_prior=prior != "none",
            num_initial_configs=stored_first_bracket(stored_study),
        )
    except BudgetTooSmall as small:
        # Nothing can be trained: the answer is the meta-model's pick, unmeasured.
        # A mistake is still said in one line: remarks wait until there is an answer.
        answer = zero_shot_answer(loaded, space, options, prior, small, note=note)
        for remark in pending:
            say(remark)
        return dataclasses.replace(answer, notes=tuple(remarks))
    note(f"plan: {plan.describe()}")
    # Every input is checked: now the heavy imports (a mistake above is said at once).
    import torch
    from torch import nn

    from llp.knowledge import make_optimizer
    from llp.meta_probing import MetaProbing
    from llp.runner import StudyFailedError
    from llp.store import KnowledgeBaseError, StudyBusyError, StudyExistsError

    # The families' models are small: one thread is much faster than several competing
    # for the cores, and --workers runs evaluations side by side instead.
    torch.set_num_threads(1)
    family = loaded.recipe.family
    kb = open_knowledge_base(options.storage)
    executor = None
    try:
        base = f"{loaded.name}-{family}-{settings_digest(loaded, space, plan, options, prior)}"
        name, resumed = choose_study_name(kb, base, options, note)
        note = say
        for remark in pending:
            note(remark)
        note(
            f"study {name!r} in {kb.storage}"
            + (
                f" (resumed: {len(kb.evaluations(study=name))} evaluations stored)"
                if resumed
                else ""
            )
        )
        if options.dask_address:
            from llp.executors import make_executor

            # An existing Dask cluster: llp closes its own client, never the cluster.
            executor = make_executor(
                "dask", n_workers=options.workers, address=options.dask_address
            )
        elif options.workers > 1:
            from llp.executors import make_executor

            # Workers ignore Ctrl-C and train with one torch thread each.
            executor = make_executor("process", n_workers=options.workers)
        try:
            mp = MetaProbing(
                starting_configs(space),
                model_builder(family, data),
                data,
                nn.CrossEntropyLoss(),
                make_optimizer,
                storage=kb,
                study_name=name,
                seed=options.seed,
                max_epochs=options.epochs,
                space=space,
                model_family=family,
                prior=prior,
                n_workers=options.workers,
                executor=executor,
                show_progress=False,
                dataset_name=loaded.name,
                # How to read the data again (llp report); resuming with other data is
                # refused like any other change of settings.
                study_settings={"cli": loaded.recipe.to_dict()},
                # A new study is created new: of two processes taking the same name at
                # once, one gets StudyExistsError (below) before training anything.
                resume=resumed,
            )
        except (TypeError, ValueError) as exc:
            raise CliError(one_line(str(exc))) from exc
        started = time.perf_counter()
        try:
            while True:
                try:
                    with progress_factory(plan.n_jobs) as progress:
                        mp.run_meta_optimization(
                            min_resource=plan.min_resource,
                            max_resource=plan.max_resource,
                            reduction_factor=plan.reduction_factor,
                            measure_flatness=options.flatness,
                            num_initial_configs=plan.num_initial_configs,
                            num_iterations=len(plan.rungs),
                            progress_callback=progress,
                            budget=options.budget,
                        )
                    break
                except StudyExistsError as exc:
                    if options.study is not None:
                        raise CliError(
                            f"{one_line(str(exc))} Another process started it a moment ago: "
                            "add --resume to continue it, or give another --study name."
                        ) from exc
                    # Another `llp tune` with the same settings took this name between
                    # our check and our start: take the next one, as documented.
                    taken, name = name, next_study_name(kb, base, name)
                    mp.study_name = name
                    note(f"study {taken!r} was started by another process; this run is {name!r}")
        except KeyboardInterrupt as stop:
            with signals_ignored():
                if executor is not None:
                    # Running evaluations would be thrown away: end the workers now.
                    terminate = getattr(executor, "terminate", None)
                    if callable(terminate):
                        terminate()
                    else:
                        executor.shutdown(wait=False, cancel_futures=True)
                    executor = None
                stored = len(kb.evaluations(study=name)) if kb.get_study(name) else 0
            raise TuneInterrupted(
                name,
                stored,
                kb.storage,
                f"resume with: {resume_command(options, name)}",
                terminated=isinstance(stop, Terminated),
            ) from None
        except StudyFailedError as exc:
            raise CliError(
                f"no configuration of study {name!r} trained successfully: {one_line(str(exc))}",
                exit_code=EXIT_NOTHING_USABLE,
            ) from exc
        except StudyBusyError as exc:
            raise CliError(one_line(str(exc))) from exc
        except KnowledgeBaseError as exc:
            # A write failed mid-study (a full disk, a read-only file): say so in one line,
            # with what is stored and how to go on.
            try:
                kept = f"{len(kb.evaluations(study=name))} evaluations of study {name!r} "
            except KnowledgeBaseError:
                kept = f"the evaluations of study {name!r} written before it "
            raise CliError(
                f"{one_line(str(exc))} {kept}are stored; resume with: "
                f"{resume_command(options, name)}"
            ) from exc
        except ValueError as exc:
            # llp's messages for what the user asked: e.g. a stored study of this name
            # with other settings (LLP_DEBUG=1 shows the traceback).
            raise CliError(one_line(str(exc))) from exc
        result = mp.result_
        if result is None:  # pragma: no cover - run_meta_optimization always sets it
            raise RuntimeError("MetaProbing finished without a result")
        search_seconds = time.perf_counter() - started
        note(f"search finished in {search_seconds:.1f} s")
        report_path, report_error, report_seconds = None, None, None
        if options.report:
            out_dir = Path(options.report_dir) if options.report_dir else report_folder(name)
            try:
                report_started = time.perf_counter()
                report_path, report_error = _write_report(
                    kb, name, out_dir, data, note, options.workers
                )
                report_seconds = time.perf_counter() - report_started
                note(f"report written in {report_seconds:.1f} s")
            except KeyboardInterrupt:
                raise TuneInterrupted(
                    name,
                    len(kb.evaluations(study=name)),
                    kb.storage,
                    "the search had finished; write its report with: llp report "
                    + shlex.quote(name)
                    + (f" --storage {shlex.quote(options.storage)}" if options.storage else ""),
                ) from None
        return TuneOutcome(
            study=name,
            storage=kb.storage,
            resumed=resumed,
            data=loaded,
            fingerprint=data.fingerprint,
            plan=plan,
            result=result,
            prior_used=prior,
            report=report_path,
            report_error=report_error,
            notes=tuple(remarks),
            search_seconds=search_seconds,
            report_seconds=report_seconds,
        )
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        kb.close()


def _write_report(
    kb: KnowledgeBase,
    study: str,
    out_dir: Path,
    data: FidelityData,
    note: Callable[[str], None],
    workers: int,
) -> tuple[Path | None, str | None]:
    """The report of the finished study (``workers`` processes retrain what the search
    did not keep); a failure is reported, not raised: the search itself is stored and
    ``llp report`` can try again."""
    from llp.report import build_report

    note("writing the report")
    try:
        report = build_report(kb, study, out_dir, data=data, progress=note, n_workers=workers)
    except Exception as exc:  # the search result must survive a plotting problem
        return None, f"{type(exc).__name__}: {one_line(str(exc))}"
    return report.index, None


__all__ = [
    "DEFAULTS",
    "TuneInterrupted",
    "TuneOptions",
    "TuneOutcome",
    "choose_study_name",
    "resume_command",
    "run_tune",
    "settings_digest",
]
