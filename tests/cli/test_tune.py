"""``llp tune``: end to end on small real data, storage on a temporary SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llp.cli._errors import CliError
from llp.cli._plan import plan_schedule
from llp.cli._progress import TuneProgress, describe_decision
from llp.store import KnowledgeBase
from tests.cli.conftest import FAST, invoke, invoke_json, modules_after

ROOT = Path(__file__).resolve().parents[2]


def test_tune_stores_every_evaluation_and_prints_the_best_configuration(
    tuned: dict[str, Any],
) -> None:
    with KnowledgeBase.open(tuned["storage_path"]) as kb:
        stored = kb.evaluations(study=tuned["study"])
        study = kb.get_study(tuned["study"])
        answer = kb.answer(tuned["study"])
    assert study is not None and study.scheduler == "MetaProbing"
    assert study.model_family == "mlp"
    assert len(stored) == tuned["n_evaluations"] > 10
    # What tune prints is the answer the study stored (by its posterior rule, not
    # necessarily the highest measured score), on the top rung.
    assert answer is not None and answer.rule == "posterior"
    assert tuned["best_score"] == pytest.approx(answer.score)
    assert tuned["best_config"] == dict(answer.config)
    assert tuned["best_resource"] == answer.fraction == 1.0
    assert tuned["total_cost"] == pytest.approx(
        sum(e.result.cost + e.result.probe_cost for e in stored)
    )
    assert Path(tuned["report"]).is_file()
    assert tuned["report_seconds"] > 0 and tuned["search_seconds"] > 0
    assert any(n.startswith("report written in ") for n in tuned["notes"])


def test_tune_records_how_the_data_was_read_so_a_later_report_can_read_it_again(
    tuned: dict[str, Any], digits_csv: Path
) -> None:
    with KnowledgeBase.open(tuned["storage_path"]) as kb:
        study = kb.get_study(tuned["study"])
    assert study is not None
    assert study.settings["cli"]["data"] == str(digits_csv.resolve())
    assert study.settings["cli"]["target"] == "label"
    assert study.settings["cli"]["family"] == "mlp"


def test_plain_output_names_the_best_configuration_study_and_report(
    digits_csv: Path, storage: Path, tmp_path: Path
) -> None:
    result = invoke(
        ["tune", digits_csv, "--storage", storage, "--budget", "12", "--epochs", "2",
         "--iterations", "3", "--no-flatness", "--prior", "store", "--report-dir", tmp_path / "r"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "best configuration (study digits-mlp-" in out
    for name in ("lr =", "width =", "optimizer =", "validation accuracy", "budget spent"):
        assert name in out
    assert f"report {tmp_path / 'r' / 'index.html'}" in " ".join(out.split())
    assert "plan:" in result.stderr and "study 'digits-mlp-" in result.stderr
    # Without landscape probes the budget line does not mention them; the budget the study
    # left unspent is said, with why it stopped.
    spent = next(line for line in out.splitlines() if line.startswith("budget spent"))
    assert "of 12 full-data epochs" in spent and "landscape" not in spent
    stopped = [line for line in out.splitlines() if line.startswith("stopped")]
    assert len(stopped) == 1 and "left unspent" in stopped[0], out


def test_quiet_prints_only_the_best_configuration(digits_csv: Path, storage: Path) -> None:
    result = invoke(
        ["tune", digits_csv, "--storage", storage, "--budget", "12", "--epochs", "2",
         "--no-flatness", "--quiet", *FAST]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert {line.split("=")[0] for line in lines} == {
        "lr", "weight_decay", "width", "dropout", "optimizer"
    }  # fmt: skip
    assert result.stderr == ""


def test_running_the_same_command_again_starts_a_new_study_and_resume_continues_it(
    digits_csv: Path, storage: Path
) -> None:
    args = ["tune", digits_csv, "--storage", storage, "--budget", "12", "--no-flatness", *FAST]
    first = invoke_json(args)
    second = invoke_json(args)
    assert second["study"] == first["study"] + "-2"
    assert second["best_config"] == first["best_config"]  # same seed, same search
    resumed = invoke_json([*args, "--resume"])
    assert resumed["study"] == second["study"] and resumed["resumed"] is True
    assert resumed["n_reused"] == resumed["n_evaluations"] == second["n_evaluations"]
    with KnowledgeBase.open(storage) as kb:
        assert len(kb.evaluations(study=second["study"])) == second["n_evaluations"]


def test_an_existing_study_name_is_continued_only_with_resume(
    digits_csv: Path, storage: Path
) -> None:
    args = ["tune", digits_csv, "--storage", storage, "--budget", "8", "--no-flatness",
            "--study", "mine", *FAST]  # fmt: skip
    invoke_json(args)
    again = invoke(args)
    assert again.exit_code == 2
    assert "The study 'mine' already exists" in again.stderr and "--resume" in again.stderr


def test_ctrl_c_exits_130_keeps_finished_evaluations_and_says_how_to_resume(
    digits_csv: Path, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TuneProgress.__call__

    def interrupt_after_three(self: TuneProgress, event: Any) -> None:
        original(self, event)
        if self.n_finished == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(TuneProgress, "__call__", interrupt_after_three)
    args = ["tune", digits_csv, "--storage", storage, "--budget", "12", "--no-flatness", *FAST]
    result = invoke(args)
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("llp tune: interrupted: 3 evaluations of study 'digits-mlp-")
    assert "--resume" in message and "--study digits-mlp-" in message
    with KnowledgeBase.open(storage) as kb:
        (study,) = kb.list_studies()
        assert len(kb.evaluations(study=study.name)) == 3

    monkeypatch.setattr(TuneProgress, "__call__", original)
    resumed = invoke_json([*args, "--resume"])
    assert resumed["study"] == study.name
    assert resumed["n_reused"] == 3 and resumed["n_evaluations"] > 3


def test_a_full_disk_mid_study_is_one_line_with_what_is_stored_and_how_to_resume(
    digits_csv: Path, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import event

    import llp.store._knowledge_base as knowledge_base

    create = knowledge_base.create_store_engine

    import sqlite3

    KnowledgeBase.open(storage).close()  # the tables exist; then the disk fills
    with sqlite3.connect(storage) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]

    def small_disk(url: str) -> Any:
        # SQLite's page limit stands in for a full disk: the file may not grow, so the
        # first write that needs a new page fails with "database or disk is full".
        engine = create(url)

        @event.listens_for(engine, "connect")
        def limit(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        return engine

    monkeypatch.setattr(knowledge_base, "create_store_engine", small_disk)
    # Enough evaluations to fill the tables' free pages.
    tune_until_the_disk_is_full(
        digits_csv,
        storage,
        lambda: monkeypatch.setattr(knowledge_base, "create_store_engine", create),
    )


def tune_until_the_disk_is_full(
    digits_csv: Path, storage: Path, make_room: Callable[[], None]
) -> None:
    """``llp tune`` stops at the full disk with one line naming what is stored and the
    resume command; once ``make_room()`` has freed space, the knowledge base opens, holds
    what the line said, and the study resumes from it."""
    args = ["tune", digits_csv, "--storage", storage, "--budget", "40", "--no-flatness", *FAST]
    result = invoke(args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (message,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "cannot grow: the disk (or the database's size limit) is full" in message
    assert "evaluations of study 'digits-mlp-" in message and "--resume" in message
    make_room()
    with KnowledgeBase.open(storage) as kb:
        (study,) = kb.list_studies()
        kept = len(kb.evaluations(study=study.name))
    assert kept > 0 and f"{kept} evaluations of study" in message
    resumed = invoke_json([*args, "--resume"])
    assert resumed["n_reused"] == kept and resumed["n_evaluations"] > kept


@pytest.fixture
def small_file_system(tmp_path: Path) -> Any:
    """An 8 MiB tmpfs mounted for the test (root only; skipped where mounting is not
    allowed, e.g. in a container without the capability)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_disk_mid_study_is_one_line_and_the_store_stays_readable(
    digits_csv: Path, small_file_system: Path
) -> None:
    import shutil

    storage = small_file_system / "knowledge.db"
    KnowledgeBase.open(storage).close()
    # Leave the study room for a few evaluations only: then the disk is full.
    filler = small_file_system / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_file_system).free - 96 * 1024))
    tune_until_the_disk_is_full(digits_csv, storage, filler.unlink)


def test_resume_sees_the_prior_its_study_started_with(
    digits_csv: Path, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Studies of other datasets stored after an interruption change the knowledge
    base, not the interrupted study's prior: its resume asks for the same trials."""
    original = TuneProgress.__call__

    def interrupt_after_four(self: TuneProgress, event: Any) -> None:
        original(self, event)
        if self.n_finished == 4:
            raise KeyboardInterrupt

    fast = ["--storage", storage, "--budget", "12", "--no-flatness", "--epochs", "3",
            "--no-report"]  # fmt: skip
    monkeypatch.setattr(TuneProgress, "__call__", interrupt_after_four)
    assert (
        invoke(["tune", digits_csv, "--study", "digits", "--prior", "store", *fast]).exit_code
        == 130
    )
    monkeypatch.setattr(TuneProgress, "__call__", original)
    for other in ("iris", "wine"):  # enough for the meta-model to fit a predictor
        invoke_json(["tune", other, "--study", other, *fast, "--prior", "none"])
    resumed = invoke_json(
        ["tune", digits_csv, "--study", "digits", "--resume", "--prior", "store", *fast]
    )
    assert resumed["n_reused"] == 4
    assert resumed["prior"]["n_datasets"] == 0  # iris and wine came later


def test_a_cnn_on_image_arrays_from_an_npz_file(tmp_path: Path, storage: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "images.npz"
    import numpy as np

    np.savez(path, X=digits.images[:400], y=digits.target[:400])
    out = invoke_json(
        ["tune", path, "--storage", storage, "--budget", "8", "--epochs", "2",
         "--no-flatness", "--prior", "none", "--no-report"]
    )  # fmt: skip
    assert out["family"] == "cnn"
    assert out["data"]["recipe"]["target"] == "y"
    assert 0.0 < out["best_score"] <= 1.0


def test_the_residual_mlp_family_tunes_a_table_and_is_recorded(
    digits_csv: Path, storage: Path
) -> None:
    out = invoke_json(
        ["tune", digits_csv, "--family", "resmlp", "--storage", storage, "--budget", "8",
         "--no-flatness", *FAST]
    )  # fmt: skip
    assert out["family"] == "resmlp"
    with KnowledgeBase.open(storage) as kb:
        study = kb.get_study(out["study"])
    assert study is not None and study.model_family == "resmlp"
    assert study.settings["cli"]["family"] == "resmlp"
    from llp.cli._data import DataRecipe, load_recipe
    from llp.cli._tune import model_builder

    loaded = load_recipe(DataRecipe.from_dict(study.settings["cli"]))
    model = model_builder("resmlp", loaded.fidelity_data(seed=0))(out["best_config"])
    assert any(type(m).__name__ == "LayerNorm" for m in model.modules())  # make_resmlp's


def test_a_parquet_table_with_a_named_target(
    make_table: Callable[..., Path], storage: Path
) -> None:
    pytest.importorskip("pyarrow")
    path = make_table("flowers", "iris", ".parquet", target="species")
    out = invoke_json(
        ["tune", path, "--target", "species", "--storage", storage, "--budget", "8",
         "--no-flatness", *FAST]
    )  # fmt: skip
    assert out["data"]["name"] == "flowers" and out["data"]["recipe"]["target"] == "species"
    assert out["best_score"] > 0.5


def test_a_space_file_restricts_the_search(tmp_path: Path, digits_csv: Path, storage: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text(
        "[[hyperparameters]]\nname = 'lr'\ntype = 'float'\nlow = 0.01\nhigh = 0.1\nlog = true\n"
        "[[hyperparameters]]\nname = 'width'\ntype = 'int'\nlow = 16\nhigh = 32\n"
        "[[hyperparameters]]\nname = 'optimizer'\ntype = 'categorical'\nchoices = ['adam']\n"
    )
    out = invoke_json(
        ["tune", digits_csv, "--storage", storage, "--space", space, "--budget", "8",
         "--no-flatness", *FAST]
    )  # fmt: skip
    with KnowledgeBase.open(storage) as kb:
        configs = [dict(e.config) for e in kb.evaluations(study=out["study"])]
    assert configs and all(set(c) == {"lr", "width", "optimizer"} for c in configs)
    assert all(0.01 <= c["lr"] <= 0.1 and 16 <= c["width"] <= 32 for c in configs)


def test_the_budget_buys_a_first_bracket_of_half_the_budget_and_brackets_for_the_rest() -> None:
    from llp.search import bracket_cost

    plan = plan_schedule(40.0, epochs=5, iterations=3, reduction_factor=2, probe_cost=1.5)
    assert plan.rungs == (0.25, 0.5, 1.0)
    first = bracket_cost(plan.num_initial_configs, plan.rungs, 2, 5)
    assert first <= 20.0 < bracket_cost(plan.num_initial_configs + 1, plan.rungs, 2, 5)
    assert plan.cost <= 40.0 and plan.brackets >= 2
    assert f"of {plan.budget:g} full-data epochs" in plan.describe()


def test_a_small_budget_lowers_the_top_rung_and_a_tiny_one_is_refused() -> None:
    small = plan_schedule(8.0, epochs=10, iterations=4, reduction_factor=2)
    assert small.rungs == (0.125, 0.25)  # one evaluation on 50% would cost 5 > 8 / 2
    assert small.cost <= 8.0
    assert small.describe().startswith("1 configuration to start, then 1 more bracket ")
    with pytest.raises(CliError, match=r"'--budget' option must be at least 1\.3"):
        plan_schedule(1.0, epochs=10, iterations=4, reduction_factor=2)
    # With --flatness the first evaluation's probes must be paid from the budget too.
    with pytest.raises(
        CliError, match=r"at least 19\.3 .*landscape probes, up to 18\.0.*--flatness"
    ):
        plan_schedule(8.0, epochs=10, iterations=4, reduction_factor=2, probe_cost=18.0)


def test_the_simulated_schedule_matches_what_the_meta_guided_search_runs(
    tuned: dict[str, Any],
) -> None:
    plan = tuned["plan"]
    # Failures cost less than planned, which leaves room: never fewer evaluations than
    # planned, and when nothing failed exactly the plan.
    if tuned["n_failed"] == 0 and tuned["stop_reason"] and "budget" in tuned["stop_reason"]:
        assert tuned["n_evaluations"] == plan["n_evaluations"]
    assert tuned["total_cost"] <= plan["budget"] + 1e-9


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"action": "promoted", "rule": "posterior", "posterior": 0.91},
         "promoted, posterior 0.9100"),
        ({"action": "promoted", "rule": "checked surrogate", "predicted": 0.72,
          "uncertainty": 0.24, "posterior": 0.91},
         "promoted, predicted rank 0.72 ± 0.24, posterior 0.9100"),
        ({"action": "proposed", "rule": "zero-shot pick", "source": "prior",
          "prior_score": 0.8512}, "proposed (prior), prior score 0.85"),
        ({"action": "proposed", "rule": "expected improvement", "source": "model",
          "predicted": 0.3, "uncertainty": 0.1, "prior_score": 0.6},
         "proposed (model), prior score 0.60"),
        ({"action": "proposed", "rule": "uniform draw", "source": "random"},
         "proposed (random)"),
    ],
)  # fmt: skip
def test_the_progress_display_names_each_kind_of_decision(
    fields: dict[str, Any], words: str
) -> None:
    from llp.search import Decision

    # Read from the decision as data (the reason text is for people and never parsed).
    decision = Decision(sequence=0, reason="(words for people)", trial_id=1, **fields)
    assert describe_decision(decision) == words
    assert describe_decision(None) is None


def test_with_the_shipped_prior_the_study_starts_from_the_pick_and_spends_its_budget(
    digits_csv: Path, storage: Path
) -> None:
    out = invoke_json(
        ["tune", digits_csv, "--storage", storage, "--budget", "12", "--epochs", "2",
         "--prior", "shipped", "--no-report", "--no-flatness"]
    )  # fmt: skip
    with KnowledgeBase.open(storage) as kb:
        reasons = [e.reason for e in kb.evaluations(study=out["study"])]
    assert reasons[0].startswith("the meta-model's pick")
    assert sum("(source: prior)" in r for r in reasons) >= 2
    assert out["total_cost"] <= 12.0 + 1e-9
    assert out["total_cost"] + out["budget_saved"] == pytest.approx(12.0)
    assert out["answer_note"] and out["sources"]["0"] == "prior"
    assert out["search_seconds"] >= out["wall_seconds"] > 0  # the prior's fits on top
    assert out["report_seconds"] is None  # --no-report
    # The knowledge base names the same answer, judged by the study's own rule.
    shown = invoke_json(["kb", "show", out["study"], "--storage", storage])
    (listed,) = invoke_json(["kb", "list", "--storage", storage])["studies"]
    for stats in (shown, listed):
        assert (stats["best_trial"], stats["best_score"]) == (out["best_trial"], out["best_score"])


@pytest.mark.slow
def test_workers_run_evaluations_in_local_processes(
    digits_csv: Path, storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["tune", digits_csv, "--storage", storage, "--budget", "12", "--no-flatness", *FAST]
    serial = invoke_json(args)
    # The report the study writes at its end retrains in as many processes.
    workers: list[int] = []

    def report(kb: Any, study: str, out: Path, **kwargs: Any) -> Any:
        workers.append(kwargs["n_workers"])
        return SimpleNamespace(index=out / "index.html")

    monkeypatch.setattr("llp.report.build_report", report)
    parallel = invoke_json(
        [*args, "--workers", "2", "--study", "parallel", "--report", "--report-dir", tmp_path]
    )
    assert workers == [2] and parallel["report"] == str(tmp_path / "index.html")
    n_initial = serial["plan"]["num_initial_configs"]

    def first_iteration(study: str) -> dict[int, dict[str, Any]]:
        with KnowledgeBase.open(storage) as kb:
            stored = kb.evaluations(study=study)
        return {e.trial_number: dict(e.config) for e in stored if e.trial_number < n_initial}

    # The first iteration is the same whoever runs it; later ones may differ, since the
    # surrogate is refitted on results in the order they arrived.
    assert first_iteration("parallel") == first_iteration(serial["study"])
    with KnowledgeBase.open(storage) as kb:
        assert len(kb.evaluations(study="parallel")) == parallel["n_evaluations"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_in_a_real_process_exits_130_without_a_traceback(
    digits_csv: Path, storage: Path, workers: str
) -> None:
    # A search far longer than the test: it must be the signal that ends it.
    args = [sys.executable, "-m", "llp", "tune", digits_csv, "--storage", storage,
            "--budget", "5000", "--epochs", "30", "--prior", "none", "--no-report",
            "--workers", workers]  # fmt: skip
    env = {**os.environ, "COLUMNS": "120"}
    process = subprocess.Popen(
        [str(a) for a in args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
        # Python installs its Ctrl-C handler only if SIGINT is not ignored at start.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and stored < 2 and process.poll() is None:
            time.sleep(0.3)
            if storage.exists():
                with KnowledgeBase.open(storage) as kb:
                    stored = kb.counts()["evaluations"]
        assert stored >= 2, "the search never stored two evaluations"
        assert process.poll() is None, "the search ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted:" in err and "--resume" in err
    with KnowledgeBase.open(storage) as kb:
        assert kb.counts()["evaluations"] >= stored


def test_python_dash_m_llp_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llp", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("llp ")
    listing = subprocess.run(
        [sys.executable, "-m", "llp", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("tune", "predict", "report", "kb"):
        assert command in listing


def test_json_output_is_strict_json(tuned: dict[str, Any]) -> None:
    # The fixture parsed it with json.loads; NaN would not survive a strict round trip.
    json.dumps(tuned, default=str, allow_nan=False)


@pytest.mark.slow
def test_dask_address_runs_the_evaluations_on_an_existing_cluster(storage: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        out = invoke_json(
            ["tune", "iris", "--storage", str(storage), "--budget", "6",
             "--dask-address", cluster.scheduler_address, "--workers", "2",
             "--no-flatness", *FAST]
        )  # fmt: skip
        with distributed.Client(cluster.scheduler_address) as client:
            # The cluster outlives llp's own client: llp never closes a cluster it was
            # given by address.
            assert client.scheduler_info()["workers"]
    with KnowledgeBase.open(storage) as kb:
        assert len(kb.evaluations(study=out["study"])) == out["n_evaluations"] > 0


def test_help_says_what_the_options_do_as_written() -> None:
    from llp.cli._data import _NPZ_LABELS, TARGET_NAMES

    result = invoke(["tune", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Needs llp[dask]." in text  # not eaten as markup
    assert "<bool>" not in text  # flags take no value
    assert "DATA" in text.split("Options:")[0] and "{data}" not in text
    assert "landscape probes included" in text and "come on top" not in text
    assert all(name in text for name in (*TARGET_NAMES, *_NPZ_LABELS))
    assert "[default: no-flatness]" in text


def test_a_budget_below_one_evaluation_answers_with_the_pick_unmeasured(
    storage: Path,
) -> None:
    tuned = invoke_json(
        ["tune", "iris", "--budget", "0.3", "--epochs", "3", "--prior", "shipped",
         "--storage", storage]
    )  # fmt: skip
    assert tuned["n_evaluations"] == 0 and tuned["total_cost"] == 0.0
    assert tuned["answer_rule"] == "zero-shot" and tuned["best_score"] is None
    assert "cannot pay for one evaluation (0.375)" in tuned["answer_note"]
    assert "nothing was trained or stored" in tuned["answer_note"]
    assert not storage.exists()  # nothing was stored
    # The same pick `llp predict` makes (and a default `llp tune` would start from).
    predicted = invoke_json(["predict", "iris", "--prior", "shipped", "--storage", storage])
    assert tuned["best_config"] == predicted["recommendations"][0]["config"]
    plain = invoke(
        ["tune", "iris", "--budget", "0.3", "--epochs", "3", "--prior", "shipped",
         "--storage", storage]
    )  # fmt: skip
    assert plain.exit_code == 0, plain.output
    assert "the meta-model's pick, not measured" in plain.stdout


def test_a_budget_that_cannot_pay_for_the_probes_answers_with_the_pick_unmeasured(
    storage: Path,
) -> None:
    # wine: one evaluation on 12.5 % of the data costs 1.25, its probes up to 18: a budget
    # of 19 trains nothing with --flatness (it used to stop with MetaProbing's error).
    tuned = invoke_json(
        ["tune", "wine", "--budget", "19", "--flatness", "--prior", "shipped",
         "--storage", storage]
    )  # fmt: skip
    assert tuned["answer_rule"] == "zero-shot" and tuned["n_evaluations"] == 0
    assert not storage.exists()
    assert (
        invoke_json(["tune", "wine", "--budget", "19", "--no-report", "--storage", storage])[
            "n_evaluations"
        ]
        > 0
    )  # without the probes the same budget trains


def test_an_identifier_column_is_left_out_with_a_note_instead_of_exhausting_memory(
    tmp_path: Path, storage: Path
) -> None:
    import pandas as pd
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["id"] = [f"row-{i}" for i in range(len(frame))]  # 150 unique strings
    frame["colour"] = ["red", "green", "blue"] * 50  # a real categorical: kept
    frame["label"] = y
    csv = tmp_path / "flowers.csv"
    frame.to_csv(csv, index=False)
    result = invoke(
        ["tune", csv, "--storage", storage, "--budget", "4", "--prior", "none", *FAST[:2],
         "--no-report", "--json"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    note = "left out 1 text column(s) with more than 100 distinct values (identifier-like): 'id'"
    assert note in json.loads(result.stdout)["notes"]
    from llp.cli._data import load_data

    data = load_data(str(csv)).fidelity_data(seed=0)
    assert data.dropped_columns == ("id",) and data.input_shape == (4 + 3,)


def test_two_runs_taking_the_same_default_name_at_once_get_the_documented_suffix(
    digits_csv: Path, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llp.cli._tune as tune

    args = ["tune", digits_csv, "--storage", storage, "--budget", "4", *FAST]
    first = invoke_json(args)
    # The second run checked the name before the first created it (the race): it finds
    # the name taken when it creates its study, before training, and moves on.
    monkeypatch.setattr(tune, "choose_study_name", lambda kb, base, options, note: (base, False))
    second = invoke_json(args)
    assert second["study"] == f"{first['study']}-2"
    assert any("was started by another process" in n for n in second["notes"])
    with KnowledgeBase.open(storage) as kb:
        assert len(kb.evaluations(study=first["study"])) == first["n_evaluations"]
    # With --study the name is the user's: a clear error instead.
    monkeypatch.setattr(
        tune, "choose_study_name", lambda kb, base, options, note: (first["study"], False)
    )
    result = invoke([*args, "--study", first["study"]])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "already exists" in result.stderr and "add --resume" in result.stderr


def test_a_study_created_new_refuses_a_stored_one_before_training(tmp_path: Path) -> None:
    from llp.store import StudyExistsError

    with KnowledgeBase.open(tmp_path / "kb.db") as kb:
        kwargs = {"scheduler": "S", "settings": {}, "space": None, "seed": 0}
        kb.get_or_create_study("s", objective="val_accuracy", create_only=True, **kwargs)
        with pytest.raises(StudyExistsError, match="'s' already exists"):
            kb.get_or_create_study("s", objective="val_accuracy", create_only=True, **kwargs)
        assert kb.get_or_create_study("s", objective="val_accuracy", **kwargs).name == "s"


def test_a_study_another_process_is_running_is_refused_before_training(
    digits_csv: Path, storage: Path
) -> None:
    args = ["tune", digits_csv, "--storage", storage, "--budget", "4", *FAST]
    first = invoke_json(args)
    with KnowledgeBase.open(storage) as other, other.study_lock(first["study"]):
        result = invoke([*args, "--study", first["study"], "--resume"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if "error:" in x]
    assert f"The study {first['study']!r} is being run by another process" in line
    with KnowledgeBase.open(storage) as kb:
        assert len(kb.evaluations(study=first["study"])) == first["n_evaluations"]


def test_a_report_without_retraining_loads_neither_torch_nor_scipy_stats(
    tuned: dict[str, Any], tmp_path: Path
) -> None:
    # Nothing in a report without landscape slices needs them (PyTorch retrains for the
    # slices; the caption's Spearman comes from pandas): a fresh interpreter, as a user
    # runs it, does not pay for importing them.
    args = ["report", tuned["study"], "--storage", tuned["storage_path"]]
    args += ["--out", tmp_path / "r", "--no-landscape", "--no-meta", "--quiet"]
    code, loaded, err = modules_after(args, tmp_path, ["torch", "scipy.stats"])
    assert (code, loaded) == (0, []), err
    assert (tmp_path / "r" / "index.html").is_file()


def test_data_too_small_for_the_default_rungs_gets_fewer_with_a_note(
    tmp_path: Path, storage: Path
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [0.1, 0.9, 0.2, 0.8, 0.3, 0.7], "label": [0, 1, 0, 1, 0, 1]})
    csv = tmp_path / "six.csv"
    frame.to_csv(csv, index=False)
    args = ["tune", csv, "--storage", storage, "--budget", "3", "--prior", "none", *FAST[:2]]
    result = invoke([*args, "--no-report", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    note = (
        "2 rung(s), not 4: with 4 training examples and --reduction-factor 2, a smaller "
        "first rung would hold fewer than one example per class"
    )
    assert note in out["notes"]
    # The resume line leaves --iterations out: the same data plans the same rungs again.
    again = invoke([*args, "--study", out["study"], "--resume", "--no-report", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["n_evaluations"] == out["n_evaluations"]
    # Asked for explicitly, too many rungs are still a mistake, said in one line.
    refused = invoke([*args, "--iterations", "3", "--no-report"])
    assert refused.exit_code == 2 and "must be at most 2 for 4 training examples" in refused.output


def test_tune_names_the_earlier_studies_that_predict_it_inertly(tmp_path: Path) -> None:
    storage = tmp_path / "kb.db"
    hostile = "[/]iris\x1b[2J"  # markup and a terminal escape in a study name
    for data, name in (("iris", hostile), ("wine", "wine-study")):
        invoke_json(
            ["tune", data, "--storage", storage, "--budget", "12", "--epochs", "2",
             "--prior", "none", "--no-report", "--study", name]
        )  # fmt: skip
    args = ["tune", "breast_cancer", "--storage", storage, "--budget", "24", "--epochs", "2"]
    args += ["--prior", "store", "--no-report"]
    out = invoke_json(args)
    weights = out["prior_weights"]
    assert set(weights["earlier"]) <= {hostile, "wine-study"} and weights["n_pairs"] > 0
    assert sum(weights["earlier"].values()) + weights["this_study"] == pytest.approx(1.0)
    plain = invoke([*args, "--study", "again"])
    assert plain.exit_code == 0, plain.output
    (line,) = [x for x in plain.stdout.splitlines() if x.startswith("studies like this one")]
    assert "this study" in line and "\x1b" not in plain.output
    if hostile in weights["earlier"]:
        assert "[/]iris\\x1b[2J" in line  # shown as text, the escape spelled out
    # Tuned under that name in plain output (not --json): the name prints as text.
    named = invoke(["tune", "iris", "--storage", storage, "--budget", "6", "--epochs", "2",
                    "--prior", "none", "--no-report", "--study", "[/]x[bold"])  # fmt: skip
    assert named.exit_code == 0, named.output
    assert "[/]x[bold" in named.output and "Traceback" not in named.output


def test_a_prior_of_one_dataset_is_said_in_the_singular(tmp_path: Path) -> None:
    storage = tmp_path / "kb.db"
    invoke_json(["tune", "iris", "--storage", storage, "--budget", "6", "--epochs", "2",
                 "--prior", "none", "--no-report"])  # fmt: skip
    result = invoke(["tune", "wine", "--storage", storage, "--budget", "6", "--epochs", "2",
                     "--prior", "store", "--no-report"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("meta-model prior")]
    assert " of 1 dataset (knowledge base)" in line


def test_with_a_prior_a_budget_of_a_few_trainings_screens_several_configurations() -> None:
    # 2.7 full trainings: half the budget carries one configuration to all of the data
    # and the rest cannot carry another. With a prior the whole budget goes to the first
    # bracket (one configuration alone would make the pick the answer unmeasured);
    # without one the starting configuration alone did better (BENCHMARKS.md).
    warm = plan_schedule(26.6667, epochs=10, iterations=4, reduction_factor=2)
    cold = plan_schedule(26.6667, epochs=10, iterations=4, reduction_factor=2, with_prior=False)
    assert (warm.num_initial_configs, warm.brackets) == (5, 1) and warm.cost <= 26.6667
    assert (cold.num_initial_configs, cold.brackets) == (1, 1)
    # Half of 3.2 to 4.8 full trainings buys a first bracket of one to three: with a prior
    # it is widened toward a full successive-halving bracket (8 on four rungs, halving).
    for budget, n in ((32.0, 7), (40.0, 8), (48.0, 8)):
        warm = plan_schedule(budget, epochs=10, iterations=4, reduction_factor=2)
        cold = plan_schedule(budget, epochs=10, iterations=4, reduction_factor=2, with_prior=False)
        assert warm.num_initial_configs == n and cold.num_initial_configs < n
        assert warm.cost <= budget and len(warm.rungs) == 4
    # Where the top rungs are out of reach (8), or half the budget already buys a full
    # bracket (80), nothing changes.
    for budget in (8.0, 80.0):
        a = plan_schedule(budget, epochs=10, iterations=4, reduction_factor=2)
        b = plan_schedule(budget, epochs=10, iterations=4, reduction_factor=2, with_prior=False)
        assert a == b and a.brackets >= 2
    # A resumed study keeps the first bracket it was planned with.
    kept = plan_schedule(
        26.6667, epochs=10, iterations=4, reduction_factor=2, num_initial_configs=1
    )
    assert kept.num_initial_configs == 1


def test_a_study_planned_under_the_earlier_first_bracket_resumes_with_its_command(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llp.cli._tune as tune

    args = ["tune", "iris", "--budget", "5.4", "--epochs", "2", "--study", "planned"]
    args += ["--storage", storage, "--prior", "shipped", "--no-report"]
    plan = tune.plan_schedule
    # Before 2026-12-07 a prior did not change the plan: one configuration to start.
    monkeypatch.setattr(
        tune, "plan_schedule", lambda *a, **k: plan(*a, **{**k, "with_prior": False})
    )
    first = invoke_json(args)
    assert first["plan"]["num_initial_configs"] == 1
    monkeypatch.setattr(tune, "plan_schedule", plan)
    again = invoke_json([*args, "--resume"])
    assert again["resumed"] and again["plan"]["num_initial_configs"] == 1
    assert again["n_evaluations"] == first["n_evaluations"]
    # A new study at that budget screens several.
    new = invoke_json([*args[:6], "--study", "new", *args[8:]])
    assert new["plan"]["num_initial_configs"] > 1


def test_a_study_made_under_the_old_default_of_three_rungs_resumes_with_its_command(
    storage: Path,
) -> None:
    # Until 2026-12-07 the default was --iterations 3; the resume line a study printed
    # then leaves it out, and must still continue that study, not be refused.
    args = ["tune", "iris", "--budget", "6", "--epochs", "2", "--study", "old"]
    args += ["--storage", storage]
    first = invoke_json([*args, "--iterations", "3", "--no-report"])
    assert first["plan"]["rungs"] == [0.25, 0.5, 1.0]
    again = invoke_json([*args, "--resume", "--no-report"])
    assert again["plan"]["rungs"] == [0.25, 0.5, 1.0]
    assert again["n_evaluations"] == first["n_evaluations"] and again["resumed"]
    # A new study gets the current default.
    new = invoke_json(["tune", "iris", "--budget", "6", "--epochs", "2", "--study", "new",
                       "--storage", storage, "--resume", "--no-report"])  # fmt: skip
    assert new["plan"]["rungs"] == [0.125, 0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("name", "images"),
    [("digits", False), ("digits", True), ("iris", False), ("wine", False),
     ("breast_cancer", False)],
)  # fmt: skip
def test_built_in_datasets_read_without_scikit_learn_are_its_loaders_arrays(
    name: str, images: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from sklearn import datasets

    from llp.cli import _data

    bunch = getattr(datasets, f"load_{name}")()
    expected = bunch.images[:, None] if images else bunch.data
    X, y = _data._load_sklearn(name, images=images)
    assert _data._read_bundled(name) is not None  # read from the file, not the loader
    assert X.dtype == expected.dtype and np.array_equal(X, expected)
    assert y.dtype == bunch.target.dtype and np.array_equal(y, bunch.target)
    # A file missing or laid out otherwise (another scikit-learn): its loader instead.
    monkeypatch.setattr(_data, "_BUNDLED_FILES", {name: "no-such-file.csv"})
    assert _data._read_bundled(name) is None
    X2, y2 = _data._load_sklearn(name, images=images)
    assert np.array_equal(X2, X) and np.array_equal(y2, y)
