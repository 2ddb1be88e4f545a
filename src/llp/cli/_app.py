"""The ``llp`` command (typer): tune, predict, kb list|show|export|import, report."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from llp.cli._defaults import DEFAULT_STORAGE, STORAGE_ENV
from llp.cli._defaults import TUNE_DEFAULTS as DEFAULTS
from llp.cli._errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    CliError,
    exits_cleanly,
    one_line,
)

if TYPE_CHECKING:
    from rich.console import Console

    from llp.store import StudyRecord

app = typer.Typer(
    name="llp",
    help=(
        "llp (LossLandscapeProbe): multi-fidelity hyperparameter search for PyTorch that "
        "learns across studies. Everything it measures lands in a knowledge base "
        f"(--storage, ${STORAGE_ENV}, default {DEFAULT_STORAGE})."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: option text as written (no markup eating "llp[dask]"), flags
    # without type placeholders, DATA in the usage line, lines broken between words.
    rich_markup_mode=None,
)
kb_app = typer.Typer(
    help="What the knowledge base holds; export and import it to share knowledge.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(kb_app, name="kb")

# ----------------------------------------------------------------------------- options
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help=(
            "Knowledge base: a SQLite path, sqlite:///path or postgresql://user:pw@host/db. "
            f"Default: ${STORAGE_ENV}, else {DEFAULT_STORAGE}."
        ),
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display or remarks; results only.")
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help=(
            "Label column of a CSV/Parquet file (default: a column named target, label, "
            "labels, class or y, any case, else the last) or label array of an NPZ file "
            "(default: y, labels, label, target or targets)."
        ),
        show_default=False,
    ),
]
FamilyOpt = Annotated[
    str,
    typer.Option(
        "--family",
        help=(
            "Model family: mlp or resmlp (residual MLP) for tables, cnn for image/signal "
            "arrays, or auto (mlp or cnn by the data's shape)."
        ),
    ),
]
SpaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--space",
        help="Search space file (TOML, YAML or JSON, SearchSpace.to_dict format). Default: "
        "lr, weight_decay, width, dropout, optimizer as in the shipped knowledge.",
        show_default=False,
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice.")]
DataArg = Annotated[
    str,
    typer.Argument(
        help="A CSV, Parquet or NPZ file, or a built-in dataset: digits, digits-images, "
        "iris, wine, breast_cancer.",
        show_default=False,
        metavar="DATA",
    ),
]


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector off for a short command that reads the prior: its
    records (about 200,000 long-lived objects with corpus v2) hold no cycles, yet each
    full pass of the collector scans them all, about half of ``llp predict``'s time
    beyond reading them. Reference counting still frees everything else. On the way out,
    what the command built goes straight to the oldest generation (``gc.freeze`` then
    ``gc.unfreeze``, which moves it without a scan): turned back on with all of it in the
    youngest one, the collector first scanned it all once more, 0.3 s of a warm ``llp
    predict``. Nothing stays frozen: its garbage is collected by the next full pass."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _consoles(quiet: bool, as_json: bool) -> tuple[Console, Console]:
    """stdout for results; stderr for remarks and progress (silent with --quiet/--json)."""
    from rich.console import Console

    # No markup: names, reasons and configurations come from files anyone may share; a
    # "[/]" or "[link=...]" in them must print as written (styles use rich Text).
    out = Console(highlight=False, soft_wrap=True, markup=False)
    err = Console(
        stderr=True, highlight=False, soft_wrap=True, quiet=quiet or as_json, markup=False
    )
    return out, err


def _remark(err: Console, text: str) -> None:
    """One remark line on stderr: ``llp: TEXT`` (TEXT printed inert)."""
    from llp.cli._errors import inert
    from llp.cli._render import styled

    err.print(styled(("llp:", "dim"), " ", inert(text)))


#: Seeds go to NumPy, PyTorch and the store: a 32-bit unsigned range fits them all.
MAX_SEED = 2**32 - 1


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise CliError(
            f"The '--seed' option must be an int in [0, {MAX_SEED}]. Got {seed} instead."
        )


def check_at_least(option: str, value: int, minimum: int) -> None:
    """Integer options: name the option, show the value, state the rule."""
    if value < minimum:
        raise CliError(f"The '{option}' option must be an int >= {minimum}. Got {value} instead.")


def _version(value: bool) -> None:
    if value:
        from llp import __version__

        typer.echo(f"llp {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """llp: tune, predict, inspect the knowledge base, report."""


# ----------------------------------------------------------------------------- tune
@app.command()
@exits_cleanly("tune")
def tune(
    data: DataArg,
    target: TargetOpt = None,
    family: FamilyOpt = DEFAULTS["family"],
    space: SpaceOpt = None,
    budget: Annotated[
        float,
        typer.Option(
            "--budget",
            help="Compute to spend, in full-data-epoch equivalents (an epoch on 25% of the "
            "data costs 0.25), landscape probes included; the schedule is planned from it "
            "(see docs/cli.md).",
        ),
    ] = DEFAULTS["budget"],
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs of every evaluation.")] = DEFAULTS[
        "epochs"
    ],
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations",
            help="Rungs: the data share grows by --reduction-factor per iteration up to all of "
            f"it. [default: {DEFAULTS['iterations']}, fewer where the data is too small]",
            show_default=False,
        ),
    ] = None,
    reduction_factor: Annotated[
        int,
        typer.Option(
            "--reduction-factor",
            help="Keep the top 1/N of each rung and grow the data N-fold.",
        ),
    ] = DEFAULTS["reduction_factor"],
    storage: StorageOpt = None,
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study name. Default: derived from the data and settings (a new name per run).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the study (--study, else the latest run of these settings); "
            "finished evaluations are reused.",
        ),
    ] = False,
    seed: SeedOpt = DEFAULTS["seed"],
    workers: Annotated[
        int, typer.Option("--workers", help="Evaluations run at once, in local processes.")
    ] = DEFAULTS["workers"],
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address",
            help="Run evaluations on an existing Dask cluster (e.g. tcp://host:8786); "
            "--workers then sets how many are in flight. Needs llp[dask].",
            show_default=False,
        ),
    ] = None,
    prior: Annotated[
        str,
        typer.Option(
            "--prior",
            help="The meta-model's starting knowledge: default (shipped + knowledge base), "
            "shipped, store (knowledge base only) or none.",
        ),
    ] = DEFAULTS["prior"],
    flatness: Annotated[
        bool,
        typer.Option(
            "--flatness/--no-flatness",
            help="Measure loss-landscape sharpness after every evaluation (meta-model "
            "features); the probes are paid from --budget. Off by default: in the benchmarks "
            "they did not repay their cost.",
        ),
    ] = DEFAULTS["flatness"],
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write the HTML report at the end.")
    ] = True,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Folder of the report. Default: llp-runs/reports/STUDY.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Tune a model on DATA: meta-guided Hyperband over data shares, every
    evaluation stored; prints the best configuration and where the report is."""
    from llp.cli._progress import TuneProgress
    from llp.cli._render import dumps, print_tune
    from llp.cli._tune import TuneInterrupted, TuneOptions, run_tune, terminate_like_ctrl_c

    if not budget > 0:
        raise CliError(f"The '--budget' option must be a number > 0. Got {budget:g} instead.")
    check_at_least("--epochs", epochs, 1)
    if iterations is not None:
        check_at_least("--iterations", iterations, 1)
    check_at_least("--reduction-factor", reduction_factor, 2)
    check_at_least("--workers", workers, 1)
    check_seed(seed)
    out, err = _consoles(quiet, as_json)
    options = TuneOptions(
        data=data,
        target=target,
        family=family,
        space=str(space) if space is not None else None,
        budget=budget,
        epochs=epochs,
        iterations=iterations,
        reduction_factor=reduction_factor,
        storage=storage,
        study=study,
        resume=resume,
        seed=seed,
        workers=workers,
        dask_address=dask_address,
        prior=prior,
        flatness=flatness,
        report=report,
        report_dir=str(report_dir) if report_dir is not None else None,
    )
    show = not (quiet or as_json)
    try:
        with terminate_like_ctrl_c():
            outcome = run_tune(
                options,
                note=lambda text: _remark(err, text),
                progress_factory=lambda n: TuneProgress(err, n, enabled=show),
            )
    except TuneInterrupted as stop:
        typer.echo(f"llp tune: {stop.message()}", err=True)
        raise typer.Exit(EXIT_TERMINATED if stop.terminated else EXIT_INTERRUPTED) from None
    if as_json:
        typer.echo(dumps(outcome.to_json()))
    else:
        print_tune(out, outcome, quiet=quiet)
        if outcome.report_error is not None:
            typer.echo(
                f"llp tune: warning: the report was not written ({outcome.report_error}); "
                f"retry with: llp report {outcome.study}",
                err=True,
            )


# ----------------------------------------------------------------------------- predict
@app.command()
@exits_cleanly("predict")
def predict(
    data: DataArg,
    target: TargetOpt = None,
    family: FamilyOpt = "auto",
    space: SpaceOpt = None,
    storage: StorageOpt = None,
    prior: Annotated[
        str,
        typer.Option(
            "--prior",
            help="Knowledge to predict from: default (shipped + knowledge base), shipped or store.",
        ),
    ] = "default",
    seed: SeedOpt = 0,
    n_configs: Annotated[
        int, typer.Option("--configs", "-n", help="Configurations to recommend.")
    ] = 3,
    neighbours: Annotated[
        int,
        typer.Option("--neighbours", help="Similar past datasets to show and score from."),
    ] = 5,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Recommend hyperparameters for DATA without training (zero-shot, from the
    meta-model), with the most similar past datasets and the expected score."""
    from llp.cli._data import load_data
    from llp.cli._predict import recommend
    from llp.cli._render import dumps, print_predict
    from llp.cli._spaces import default_space, read_space_file

    check_at_least("--configs", n_configs, 1)
    check_at_least("--neighbours", neighbours, 1)
    check_seed(seed)
    out, err = _consoles(quiet, as_json)
    loaded = load_data(data, target=target, family=family)
    with _no_cycle_collection():
        result = recommend(
            loaded,
            space=read_space_file(space) if space is not None else default_space(),
            storage=storage,
            prior=prior,
            seed=seed,
            n_configs=n_configs,
            n_neighbours=neighbours,
            note=lambda text: _remark(err, text),
        )
    if as_json:
        typer.echo(dumps(result))
    else:
        print_predict(out, result, quiet=quiet)


# ----------------------------------------------------------------------------- report
@app.command()
@exits_cleanly("report")
def report(
    study: Annotated[
        str,
        typer.Argument(
            help="Name of a stored study ('llp kb list').", show_default=False, metavar="STUDY"
        ),
    ],
    storage: StorageOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder of the report. Default: llp-runs/reports/STUDY.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="The study's data, when it moved since 'llp tune' (default: the recipe stored "
            "with the study). Needed only for the landscape slices.",
            show_default=False,
        ),
    ] = None,
    target: TargetOpt = None,
    top: Annotated[int, typer.Option("--top", help="Best configurations sliced.")] = 3,
    landscape: Annotated[
        bool,
        typer.Option(
            "--landscape/--no-landscape",
            help="Loss slices around the best configurations (their models from the weights "
            "the search kept, else retrained).",
        ),
    ] = True,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain",
            help="Retrain the sliced configurations even where the search kept their "
            "weights: checks that training reproduces the stored scores.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Configurations retrained at once, in local processes, when two or more "
            "need it, and threads for a meta-model fit. Default: the CPU cores "
            "available.",
            show_default=False,
        ),
    ] = None,
    meta_model: Annotated[
        bool,
        typer.Option("--meta/--no-meta", help="Refit the meta-model for its feature importances."),
    ] = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the HTML report of STUDY (PNG figures, report.json) from the knowledge base."""
    from llp.cli._render import dumps
    from llp.cli._storage import open_knowledge_base, report_folder, require_study

    check_at_least("--top", top, 1)
    if workers is not None:
        check_at_least("--workers", workers, 1)
    out, err = _consoles(quiet, as_json)
    with open_knowledge_base(storage, must_exist=True) as kb:
        record = require_study(kb, study)
        # The study exists: now the heavy imports (a wrong name is said at once).
        from llp.executors._process import available_cores
        from llp.report import build_report

        if landscape:  # models for the slices; nothing else here needs torch
            import torch

            torch.set_num_threads(1)
        fidelity_data, note = _study_data(record, data, target) if landscape else (None, None)
        if note:
            _remark(err, note)
        folder = out_dir if out_dir is not None else report_folder(study)
        try:
            written = build_report(
                kb,
                study,
                folder,
                data=fidelity_data,
                top_k=top,
                landscape=landscape,
                meta_model=meta_model,
                progress=lambda line: _remark(err, line),
                retrain=retrain,
                n_workers=workers or available_cores(),
            )
        except ValueError as exc:  # e.g. a study with no evaluations yet
            raise CliError(str(exc)) from exc
        except OSError as exc:  # an unwritable or impossible --out
            raise CliError(
                f"Cannot write the report to {str(folder)!r}: {one_line(str(exc))}. Choose "
                "another folder with --out."
            ) from exc
    if as_json:
        typer.echo(
            dumps(
                {
                    "study": study,
                    "index": str(written.index),
                    "figures": {k: str(v) for k, v in written.figures.items()},
                    "data": str(written.data),
                    "notes": written.notes,
                }
            )
        )
        return
    for text in written.notes:
        _remark(err, text)
    out.print(str(written.index))


def _study_data(
    record: StudyRecord, data: str | None, target: str | None
) -> tuple[Any, str | None]:
    """The study's data for the landscape slices: ``--data`` if given, else the recipe
    ``llp tune`` stored. A recipe that cannot be read again is a remark, not an error:
    the rest of the report does not need the data."""
    from llp.cli._data import DataRecipe, load_data

    seed = int(record.seed)
    recipe_dict = record.settings.get("cli")
    if data is not None:
        family = recipe_dict.get("family", "auto") if isinstance(recipe_dict, dict) else "auto"
        loaded = load_data(data, target=target, family=str(family))
        return loaded.fidelity_data(seed=seed), None
    if recipe_dict is None:
        return None, None
    try:
        recipe = DataRecipe.from_dict(recipe_dict)
        loaded = load_data(recipe.data, target=recipe.target, family=recipe.family)
        return loaded.fidelity_data(seed=seed), None
    except (CliError, TypeError, ValueError) as exc:  # a recipe stored by hand or damaged
        return (
            None,
            f"no landscape slices: the study's data cannot be read again "
            f"({one_line(str(exc))}); pass --data",
        )


# ----------------------------------------------------------------------------- kb
@kb_app.command("list")
@exits_cleanly("kb list")
def kb_list(storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Datasets and studies in the knowledge base, with their best scores."""
    from llp.cli._kb import list_knowledge
    from llp.cli._render import dumps, print_kb_list
    from llp.cli._storage import open_knowledge_base

    with open_knowledge_base(storage, must_exist=True) as kb:
        listing = list_knowledge(kb)
    if as_json:
        typer.echo(dumps(listing))
    else:
        out, _ = _consoles(False, False)
        print_kb_list(out, listing)


@kb_app.command("show")
@exits_cleanly("kb show")
def kb_show(
    name: Annotated[
        str,
        typer.Argument(
            help="A study name, or a dataset name or fingerprint.",
            show_default=False,
            metavar="NAME",
        ),
    ],
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One study (settings, rungs, best configurations) or one dataset (meta-features)."""
    from llp.cli._kb import show
    from llp.cli._render import dumps, print_kb_show
    from llp.cli._storage import open_knowledge_base

    with open_knowledge_base(storage, must_exist=True) as kb:
        shown = show(kb, name)
    if as_json:
        typer.echo(dumps(shown))
    else:
        out, _ = _consoles(False, False)
        print_kb_show(out, shown)


@kb_app.command("export")
@exits_cleanly("kb export")
def kb_export(
    path: Annotated[
        Path,
        typer.Argument(
            help="File to write: .json or .parquet.", show_default=False, metavar="PATH"
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="json or parquet (default: from the suffix).", show_default=False
        ),
    ] = None,
    studies: Annotated[
        list[str] | None,
        typer.Option("--study", help="Export only this study (repeatable).", show_default=False),
    ] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the knowledge base (or some studies) to a JSON or Parquet file to share."""
    from llp.cli._render import dumps
    from llp.cli._storage import open_knowledge_base
    from llp.store import export_knowledge

    with open_knowledge_base(storage, must_exist=True) as kb:
        summary = export_knowledge(kb, path, fmt=fmt, studies=studies)
    if as_json:
        typer.echo(dumps(summary.to_json()))
    else:
        typer.echo(
            f"exported {summary.datasets} datasets, {summary.studies} studies, "
            f"{summary.evaluations} evaluations to {summary.path} ({summary.format})"
        )


@kb_app.command("import")
@exits_cleanly("kb import")
def kb_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="A file written by 'llp kb export'.", show_default=False, metavar="PATH"
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Validate the file against the knowledge base; write nothing."
        ),
    ] = False,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate every record of an export file, then add it to the knowledge base
    (evaluations already stored identically are skipped)."""
    from llp.cli._render import dumps
    from llp.cli._storage import open_knowledge_base
    from llp.store import import_knowledge

    with open_knowledge_base(storage) as kb:
        summary = import_knowledge(kb, path, dry_run=dry_run)
    if as_json:
        typer.echo(dumps(summary.to_json()))
    elif dry_run:
        typer.echo(
            f"{summary.path} is valid: {summary.datasets} datasets, {summary.studies} studies "
            f"({summary.studies_new} new), {summary.evaluations} evaluations; nothing written"
        )
    else:
        typer.echo(
            f"imported {summary.path}: {summary.studies_new} new studies of {summary.studies}, "
            f"{summary.evaluations_new} new evaluations of {summary.evaluations} "
            "(the others were already stored)"
        )


def main() -> None:
    """The ``llp`` command, in this process (it raises ``SystemExit`` with the command's
    status); the console script runs it through :func:`run`."""
    import signal

    try:
        app(prog_name="llp")
    except KeyboardInterrupt:  # outside a command's own handling (e.g. during imports)
        typer.echo("llp: interrupted", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as done:
        if done.code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            # Stopped, and the resume line is printed: a further Ctrl-C while the
            # interpreter shuts down (joining worker threads) must not kill it half-way.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise


def run() -> NoReturn:
    """Entry point of the ``llp`` console script and ``python -m llp``: :func:`main`, then
    leave without tearing the interpreter down.

    A study's command builds a prior of hundreds of thousands of objects; the interpreter's
    own exit would free them one by one and collect the modules' cycles, which took 3 to 4
    seconds after ``llp tune`` had printed its answer (BENCHMARKS.md, "Command-line
    latency"). Here, once the command is done, the exit handlers run
    (:func:`atexit.register`'s, so ``weakref.finalize``, logging and multiprocessing
    clean-ups too), the standard streams are flushed and the process ends with the
    command's status. Every knowledge base was closed by its command. Where another
    thread still runs, the interpreter exits as usual, so that it joins it. An exception
    other than ``SystemExit`` leaves as usual too (its traceback printed)."""
    try:
        main()
    except SystemExit as done:
        code = done.code
    else:
        code = None
    leave(code)


def leave(code: object) -> NoReturn:
    """End the process with ``code`` (as ``SystemExit(code)`` would) without the
    interpreter's teardown; see :func:`run`."""
    import atexit
    import os
    import sys
    import threading

    if threading.active_count() > 1:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:  # SystemExit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: what the interpreter's exit says
            status = status or 120
    os._exit(status)


__all__ = ["EXIT_USER_ERROR", "app", "kb_app", "leave", "main", "run"]
