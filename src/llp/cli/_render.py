"""Human-readable output of the ``llp`` commands (``--json`` prints the dicts instead)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llp.cli._errors import inert
from llp.search._base import format_share

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from llp.cli._tune import TuneOutcome, ZeroShotOutcome


def json_safe(value: Any) -> Any:
    """Strict JSON values: non-finite floats become null, numpy scalars Python ones."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any) -> str:
    return json.dumps(json_safe(value), indent=2, allow_nan=False)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return inert(value)


def counted(n: int, noun: str) -> str:
    """``"1 dataset"``, ``"3 datasets"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def fmt_score(value: float | None) -> str:
    """A validation score as every surface prints it: four decimals."""
    return "-" if value is None else f"{value:.4f}"


def config_lines(config: Mapping[str, Any], indent: int = 2) -> list[str]:
    width = max((len(inert(k)) for k in config), default=0)
    return [f"{' ' * indent}{inert(k):>{width}} = {fmt(v)}" for k, v in config.items()]


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text in parts, a part ``(text, style)`` styled (no markup is parsed)."""
    from rich.text import Text

    return Text.assemble(*parts)


def objective_words(objective: str) -> str:
    return "validation accuracy" if objective == "val_accuracy" else "- validation loss"


def print_tune(console: Console, outcome: TuneOutcome | ZeroShotOutcome, *, quiet: bool) -> None:
    from llp.cli._tune import ZeroShotOutcome

    if isinstance(outcome, ZeroShotOutcome):
        print_zero_shot(console, outcome, quiet=quiet)
        return
    study = outcome.result.study
    if quiet:
        for key, value in study.best_config.items():
            console.print(f"{key}={fmt(value)}")
        return
    best = study.best_evaluation
    prior = outcome.result.prior
    console.print()
    console.print(styled(("best configuration", "bold"), f" (study {inert(outcome.study)}):"))
    for line in config_lines(study.best_config):
        console.print(line)
    rows = [
        (
            objective_words(study.objective),
            f"{study.best_score:.4f} on {format_share(best.resource)} of the training data "
            f"(trial {best.trial_id})",
        ),
        *([("why this answer", outcome.result.answer_note)] if outcome.result.answer_note else []),
        (
            "evaluations",
            f"{len(study.evaluations)} ({study.n_failed} failed, {study.n_reused} reused from "
            "the knowledge base)",
        ),
        (
            "budget spent",
            f"{study.total_cost:.1f} of {outcome.plan.budget:g} full-data epochs"
            + (
                f" ({study.probe_cost:.1f} of them on landscape probes)"
                if study.probe_cost > 0
                else ""
            ),
        ),
        *(
            [
                (
                    "stopped",
                    f"{outcome.result.stop_reason}; {outcome.result.budget_saved:.1f} "
                    "full-data epochs left unspent",
                )
            ]
            if outcome.result.stop_reason and outcome.result.budget_saved > 0.05
            else []
        ),
        (
            "wall time",
            f"{study.wall_seconds:.1f} s evaluating"
            + (
                f", {outcome.search_seconds:.1f} s with the meta-model's prior and fits"
                if outcome.search_seconds is not None
                else ""
            ),
        ),
        (
            "meta-model prior",
            f"{counted(prior.n_evaluations, 'evaluation')} of "
            f"{counted(prior.n_datasets, 'dataset')} ({', '.join(prior.sources) or 'none'})",
        ),
    ]
    if outcome.result.zero_shot_config is not None:
        shown = ", ".join(f"{k}={fmt(v)}" for k, v in outcome.result.zero_shot_config.items())
        rows.append(("zero-shot prediction", shown))
    if outcome.result.prior_weights is not None:
        rows.append(("studies like this one", inert(outcome.result.prior_weights.describe())))
    rows.append(("knowledge base", outcome.storage))
    if outcome.report is not None:
        rows.append(("report", str(outcome.report)))
    elif outcome.report_error is not None:
        rows.append(("report", f"not written: {outcome.report_error}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"{key:<{width}}  {value}", highlight=False)


def print_zero_shot(console: Console, outcome: ZeroShotOutcome, *, quiet: bool) -> None:
    config = outcome.recommendation["config"]
    if quiet:
        for key, value in config.items():
            console.print(f"{key}={fmt(value)}")
        return
    console.print()
    console.print(styled(("best configuration", "bold"), " (the meta-model's pick, not measured):"))
    for line in config_lines(config):
        console.print(line)
    rows = [
        ("why this answer", outcome.answer_note),
        ("budget spent", f"0 of {outcome.budget:g} full-data epochs"),
        (
            "meta-model prior",
            f"{counted(outcome.n_prior_evaluations, 'evaluation')} of "
            f"{counted(outcome.n_prior_datasets, 'dataset')} "
            f"({', '.join(outcome.sources) or 'none'})",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"{key:<{width}}  {value}", highlight=False)


def print_predict(console: Console, result: Mapping[str, Any], *, quiet: bool) -> None:
    recs = result["recommendations"]
    if quiet:
        for key, value in recs[0]["config"].items():
            console.print(f"{key}={fmt(value)}")
        return
    console.print(
        styled(
            ("zero-shot recommendation", "bold"),
            f" for {inert(result['data']['name'])} ({result['family']}), from "
            f"{counted(result['n_evaluations'], 'evaluation')} of "
            f"{counted(result['n_datasets'], 'dataset')} "
            f"({', '.join(result['sources'])}):",
        )
    )
    for i, rec in enumerate(recs):
        title = "recommended" if i == 0 else f"alternative {i}"
        expected = (
            f"expected validation accuracy {rec['expected_score']:.3f} ± "
            f"{rec['expected_score_std']:.3f}"
            if rec["expected_score"] is not None
            else "no comparable scores on similar datasets"
        )
        console.print()
        console.print(
            styled(
                (title, "bold"),
                f" ({rec['source']}): {expected}; predicted final rank "
                f"{rec['predicted_rank']:.2f} ± {rec['rank_uncertainty']:.2f}",
            )
        )
        for line in config_lines(rec["config"]):
            console.print(line)
    from rich.table import Table

    table = Table(title="most similar past datasets", title_justify="left", show_edge=False)
    for column in ("dataset", "source", "examples", "distance", "best accuracy"):
        table.add_column(column, justify="right" if column != "dataset" else "left")
    for d in result["similar_datasets"]:
        table.add_row(
            fmt(d["name"]),
            d["source"],
            fmt(d["n_samples"]),
            f"{d['distance']:.2f}",
            fmt_score(d["best_score"]),
        )
    console.print()
    console.print(table)
    console.print()
    console.print(result["explanation"], style="dim")


def print_kb_list(console: Console, listing: Mapping[str, Any]) -> None:
    from rich.table import Table

    counts = listing["counts"]
    console.print(
        styled(
            (inert(listing["storage"]), "bold"),
            f": {counts['datasets']} datasets, {counts['studies']} studies, "
            f"{counts['evaluations']} evaluations",
        )
    )
    shipped = listing.get("shipped_knowledge")
    if shipped:
        console.print(
            f"shipped knowledge (the default prior): {shipped['datasets']} datasets, "
            f"{shipped['evaluations']} evaluations"
        )
    if listing["datasets"]:
        table = Table(title="datasets", title_justify="left", show_edge=False)
        for column in ("name", "fingerprint", "group", "examples", "studies"):
            table.add_column(column, no_wrap=column in ("name", "fingerprint"))
        for d in listing["datasets"]:
            table.add_row(
                fmt(d["name"]),
                d["fingerprint"][:16],
                fmt(d["group"]),
                fmt(d["n_samples"]),
                str(d["n_studies"]),
            )
        console.print()
        console.print(table)
    if listing["studies"]:
        table = Table(title="studies", title_justify="left", show_edge=False)
        table.add_column("name", no_wrap=True)
        for column in ("dataset", "family", "evaluations", "best"):
            table.add_column(column, justify="left" if column == "dataset" else "right")
        for s in listing["studies"]:
            best = "-"
            if s["best_score"] is not None:
                best = f"{s['best_score']:.4f} on {format_share(s['best_fraction'])}"
            table.add_row(
                fmt(s["name"]),
                fmt(s["dataset"]),
                fmt(s["model_family"]),
                f"{s['n_evaluations']} ({s['n_failed']} failed)",
                best,
            )
        console.print()
        console.print(table)


def print_kb_show(console: Console, shown: Mapping[str, Any]) -> None:
    from rich.table import Table

    if shown["kind"] == "dataset":
        console.print(
            styled((f"dataset {fmt(shown['name'])}", "bold"), f"  {shown['fingerprint']}")
        )
        console.print(f"group {fmt(shown['group'])} · {fmt(shown['n_samples'])} examples")
        console.print(f"studies: {', '.join(map(inert, shown['studies'])) or 'none'}")
        table = Table(title="meta-features", title_justify="left", show_edge=False)
        table.add_column("name")
        table.add_column("value", justify="right")
        for key, value in shown["meta_features"].items():
            table.add_row(inert(key), fmt(value))
        console.print(table)
        return
    console.print(styled((f"study {inert(shown['name'])}", "bold")))
    console.print(
        f"dataset {fmt(shown['dataset'])} · {shown['scheduler']} · family "
        f"{fmt(shown['model_family'])} · seed {shown['seed']} · created {shown['created_at']}"
    )
    console.print(
        f"{shown['n_evaluations']} evaluations ({shown['n_failed']} failed), "
        f"{shown['total_cost']:.1f} full-data epochs"
    )
    if shown["best_config"] is not None:
        console.print(
            f"answer: trial {shown['best_trial']}, {objective_words(shown['objective'])} "
            f"{fmt_score(shown['best_score'])} on {format_share(shown['best_fraction'])} "
            "of the data"
        )
        for line in config_lines(shown["best_config"]):
            console.print(line)
    if shown["answer_note"]:
        console.print(f"why this answer: {inert(shown['answer_note'])}", highlight=False)
    table = Table(title="rungs", title_justify="left", show_edge=False)
    for column in ("data share", "evaluations", "failed", "best"):
        table.add_column(column, justify="right")
    for r in shown["rungs"]:
        table.add_row(
            format_share(r["fraction"]),
            str(r["n_evaluations"]),
            str(r["n_failed"]),
            fmt_score(r["best_score"]),
        )
    console.print(table)
    for reason in shown["failure_reasons"]:
        console.print(f"failure: {inert(reason)}", style="dim", highlight=False)


__all__ = [
    "config_lines",
    "dumps",
    "fmt",
    "json_safe",
    "print_kb_list",
    "print_kb_show",
    "print_predict",
    "print_tune",
]
