"""The catalogue of bad inputs: each one, through the Python API or the ``llp`` command,
fails with its own clear message, and leaves a knowledge base that was there before
exactly as it was (same rows, still opens).

One row per mistake: what the user does, the exception it must raise and the message
it must carry (scikit-learn's ``test_input_errors`` style). A command-line mistake
exits with status 2 and one line on stderr; the row turns that into
:class:`CommandFailed` so that every row reads the same.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from llp.data import FidelityData
from llp.executors import make_executor
from llp.runner import Runner, StudyFailedError
from llp.search import Job, RandomSearch
from llp.space import Categorical, Float, Int, SearchSpace
from llp.store import DuplicateEvaluationError, KnowledgeBase, KnowledgeBaseError
from llp.training import Fidelity
from llp.two_tier_probing import TwoTierProbing
from tests.conftest import fake_result, mlp_model_fn, mlp_optimizer_fn

STUDY = "digits-sh"
CONFIGS = [
    {"lr": 1e-2, "width": 16, "optimizer": "adam"},
    {"lr": 3e-2, "width": 32, "optimizer": "adam"},
    {"lr": 1e-1, "width": 16, "optimizer": "sgd"},
    {"lr": 1e6, "width": 16, "optimizer": "sgd"},  # diverges: a failed row in the base
]


class CommandFailed(Exception):
    """``llp ARGS`` exited with a non-zero status; the message is ``exit N: stderr``."""


# ---------------------------------------------------------------------- the setting
def digits_data(n: int = 200, **kwargs: Any) -> FidelityData:
    X, y = load_digits(return_X_y=True)
    return FidelityData(X[:n], y[:n], standardize=True, **kwargs)


def make_probe(data: Any = None, configs: Any = CONFIGS, **kwargs: Any) -> TwoTierProbing:
    """A small TwoTierProbing; any argument can be replaced by a bad one."""
    args: dict[str, Any] = {
        "model_fn": mlp_model_fn,
        "criterion": nn.CrossEntropyLoss(),
        "optimizer_fn": mlp_optimizer_fn,
    }
    args.update({k: kwargs.pop(k) for k in list(kwargs) if k in args})
    kwargs.setdefault("max_epochs", 1)
    kwargs.setdefault("show_progress", False)
    return TwoTierProbing(
        configs,
        args["model_fn"],
        digits_data() if data is None else data,
        args["criterion"],
        args["optimizer_fn"],
        **kwargs,
    )


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge base holding one real study (6 evaluations, one of them failed) and
    its export by ``llp kb export`` (when the command is there)."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "knowledge.db"
    make_probe(storage=db, study_name=STUDY, dataset_name="digits").run_successive_halving(
        0.5, 1.0, 2
    )
    try:
        from typer.testing import CliRunner

        from llp.cli import app
    except ImportError:
        return db
    result = CliRunner().invoke(
        app, ["kb", "export", str(folder / "export.json"), "--storage", str(db)]
    )
    assert result.exit_code == 0, result.output
    return db


@dataclass
class Setting:
    """What a row may use: the pre-populated knowledge base and a scratch folder."""

    kb_path: Path
    tmp: Path
    template: Path

    def file(self, name: str, content: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content)
        return path

    def copy_of_kb(self, name: str) -> Path:
        path = self.tmp / name
        shutil.copy(self.kb_path, path)
        return path

    def tampered_kb(self, name: str, *statements: str) -> Path:
        """A copy of the knowledge base with SQL run on it behind llp's back."""
        path = self.copy_of_kb(name)
        with sqlite3.connect(path) as conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()
        return path

    def export(self, mutate: Callable[[dict[str, Any]], None] | None = None) -> Path:
        """``llp kb export`` of the knowledge base, changed by ``mutate``."""
        source = self.template.with_name("export.json")
        if not source.exists():
            pytest.skip("the llp command is not available")
        document = json.loads(source.read_text())
        if mutate is not None:
            mutate(document)
        path = self.tmp / "import.json"
        path.write_text(json.dumps(document))
        return path

    def llp(self, *args: Any) -> None:
        """Run the ``llp`` command; raise :class:`CommandFailed` unless it succeeds."""
        try:
            from typer.testing import CliRunner

            from llp.cli import app
        except ImportError:
            pytest.skip("the llp command is not available")
        result = CliRunner().invoke(app, [str(a) for a in args])
        if result.exit_code != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert "Traceback" not in result.output, result.output
            assert len(lines) == 1, result.stderr  # one clear line, nothing else
            raise CommandFailed(f"exit {result.exit_code}: {lines[0]}")

    def on_kb(self, action: Callable[[KnowledgeBase], Any], path: Path | None = None) -> Any:
        """``action(kb)`` on the knowledge base at ``path`` (default: the stored one)."""
        with KnowledgeBase.open(self.kb_path if path is None else path) as kb:
            return action(kb)

    def record(self, trial: int, config: dict[str, Any], score: float = 0.5) -> None:
        """Record an evaluation at fraction 0.5, 1 epoch into the stored study."""
        job = Job(0, trial, config, Fidelity(0.5, 1), 0, 0, "by hand")
        with KnowledgeBase.open(self.kb_path) as kb:
            study = kb.get_study(STUDY)
            assert study is not None
            kb.record_evaluation(
                study.id, trial_number=trial, config=config, result=fake_result(job, score)
            )


def stored_state(path: Path) -> dict[str, Any]:
    """Everything the knowledge base holds, read through llp (so it must still open)."""
    with KnowledgeBase.open(path) as kb:
        return {
            "counts": kb.counts(),
            "datasets": [
                (d.fingerprint, d.name, dict(d.meta_features)) for d in kb.list_datasets()
            ],
            "studies": [(s.name, s.scheduler, s.settings, s.seed) for s in kb.list_studies()],
            "evaluations": [
                (
                    e.id,
                    e.study,
                    e.trial_number,
                    e.result.fidelity,
                    e.result.status,
                    e.result.score,
                    e.result.failure_reason,
                    dict(e.result.config),
                    e.result.curve,
                )
                for e in kb.evaluations()
            ],
        }


def first_stored(path: Path) -> tuple[int, dict[str, Any]]:
    with KnowledgeBase.open(path) as kb:
        e = kb.evaluations(study=STUDY)[0]
        return e.trial_number, dict(e.result.config)


# ---------------------------------------------------------------------- the rows
def _y_of(n: int) -> np.ndarray:
    return np.arange(n) % 2


def _X_with(value: float) -> np.ndarray:
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[4, 1] = value
    return X


def _lambda_in_worker_processes(s: Setting) -> None:
    with make_executor("process", n_workers=1) as executor:
        make_probe(
            model_fn=lambda config: mlp_model_fn(config), executor=executor
        ).run_successive_halving(0.5, 1.0, 2)


def _deep_corpus(s: Setting) -> None:
    from llp.knowledge import read_corpus

    nested = "[" * 100_000 + "]" * 100_000
    read_corpus(s.file("deep.jsonl.gz", gzip.compress(nested.encode())), cache=False)


def _pickled_corpus(s: Setting) -> None:
    from llp.knowledge import read_corpus

    hostile = pickle.dumps({"__reduce__": "os.system"})
    read_corpus(s.file("hostile.jsonl.gz", gzip.compress(hostile)), cache=False)


def _conflicting_score(d: dict[str, Any]) -> None:
    d["studies"][0]["evaluations"][0]["score"] = 0.999


def _object_config(d: dict[str, Any]) -> None:
    d["studies"][0]["evaluations"][0]["config"]["lr"] = {"__reduce__": "os.system"}


Row = tuple[str, Callable[[Setting], Any], type[BaseException], str]

ROWS: list[Row] = [
    # ------------------------------------------------------------ data: arrays
    (
        "NaN in the features",
        lambda s: FidelityData(_X_with(np.nan), _y_of(20)),
        ValueError,
        r"The 'X' parameter contains 1 NaN or inf values; impute or drop them first",
    ),
    (
        "inf in the features",
        lambda s: TwoTierProbing.from_arrays(
            _X_with(np.inf),
            _y_of(20),
            CONFIGS,
            mlp_model_fn,
            nn.CrossEntropyLoss(),
            mlp_optimizer_fn,
        ),
        ValueError,
        r"The 'X' parameter contains 1 NaN or inf values",
    ),
    (
        "empty features",
        lambda s: FidelityData([], []),
        ValueError,
        r"The 'X' parameter is empty; it needs at least 4 samples",
    ),
    (
        "no feature columns",
        lambda s: FidelityData(np.empty((10, 0)), _y_of(10)),
        ValueError,
        r"The 'X' parameter is empty \(shape \(10, 0\)\)",
    ),
    (
        "features that are strings",
        lambda s: FidelityData(np.array([["a", "b"]] * 10), _y_of(10)),
        TypeError,
        r"The 'X' parameter must be numeric. Got dtype <U1 instead",
    ),
    (
        "rows of different lengths",
        lambda s: FidelityData([[1.0, 2.0], [3.0]] * 5, _y_of(10)),
        ValueError,
        r"The 'X' parameter must be a rectangular array .* its rows differ in length",
    ),
    (
        "X and y of different lengths",
        lambda s: FidelityData(np.zeros((10, 2)), _y_of(9)),
        ValueError,
        r"'X' and 'y' parameters must have the same number of samples. Got 10 and 9",
    ),
    (
        "one class",
        lambda s: FidelityData(np.random.default_rng(0).normal(size=(10, 2)), np.zeros(10)),
        ValueError,
        r"The 'y' parameter has a single class \(.*\); classification needs at least 2 classes",
    ),
    (
        "a class with one example",
        lambda s: FidelityData(np.zeros((10, 2)), [0] * 5 + [1] * 4 + [2]),
        ValueError,
        r"Every class needs at least 2 examples .* Classes with fewer: \[.*2.*\]",
    ),
    (
        "NaN labels",
        lambda s: FidelityData(np.zeros((10, 2)), [0.0, 1.0] * 4 + [np.nan, 1.0]),
        ValueError,
        r"The 'y' parameter contains NaN or inf labels",
    ),
    (
        "string labels as regression targets",
        lambda s: FidelityData(np.zeros((10, 2)), ["cat", "dog"] * 5, task="regression"),
        TypeError,
        r"The 'y' parameter holds labels of dtype <U3 \(e.g. 'cat'\), which cannot be "
        r"regression targets; use task='classification'",
    ),
    (
        "labels of mixed types",
        lambda s: FidelityData(np.zeros((10, 2)), np.array([1, "a"] * 5, dtype=object)),
        TypeError,
        r"The 'y' parameter mixes labels of types \['int', 'str'\]",
    ),
    (
        "labels of the wrong shape",
        lambda s: FidelityData(np.zeros((10, 2)), np.zeros((10, 2))),
        ValueError,
        r"The 'y' parameter must be 1-D. Got shape \(10, 2\)",
    ),
    # ------------------------------------------------------------ data: dataset_fn
    (
        "dataset_fn returning a str (with a knowledge base)",
        lambda s: make_probe(lambda fraction: "loader", storage=s.kb_path).run_successive_halving(
            0.5, 1.0, 2
        ),
        TypeError,
        r"dataset_fn\(1.0\) must return a pair \(train_loader, val_loader\). Got a str",
    ),
    (
        "dataset_fn yielding bare tensors (with a knowledge base)",
        lambda s: make_probe(
            lambda fraction: ([torch.zeros(4, 64)], [torch.zeros(4, 64)]), storage=s.kb_path
        ).run_successive_halving(0.5, 1.0, 2),
        TypeError,
        r"The train_loader of dataset_fn\(1.0\) must yield \(inputs, targets\) tensor pairs",
    ),
    (
        "dataset_fn with empty loaders (with a knowledge base)",
        lambda s: make_probe(lambda fraction: ([], []), storage=s.kb_path).run_successive_halving(
            0.5, 1.0, 2
        ),
        ValueError,
        r"The train_loader of dataset_fn\(1.0\) yielded no batches",
    ),
    (
        "dataset_fn returning a str",
        lambda s: make_probe(lambda fraction: "loader").run_successive_halving(0.5, 1.0, 2),
        TypeError,
        r"dataset_fn\(0.5\) must return a pair \(train_loader, val_loader\). Got a str",
    ),
    (
        "data that is neither FidelityData nor a function",
        lambda s: make_probe(data=np.zeros((10, 2))),
        TypeError,
        r"The 'dataset_fn' parameter must be a FidelityData or a callable",
    ),
    # ------------------------------------------------------------ configurations, spaces
    (
        "configs with mismatched keys",
        lambda s: make_probe(configs=[{"lr": 0.1, "width": 16}, {"lr": 0.1, "depth": 2}]),
        ValueError,
        r"All configs must have the same keys: configs\[1\] differs from configs\[0\] "
        r"\(missing \['width'\], extra \['depth'\]\)",
    ),
    (
        "configs that are not a list",
        lambda s: make_probe(configs={"lr": 0.1}),
        TypeError,
        r"The 'configs' parameter must be a list of dicts. Got dict",
    ),
    (
        "no configs",
        lambda s: make_probe(configs=[]),
        ValueError,
        r"The 'configs' parameter must be a non-empty list of dicts",
    ),
    (
        "a NaN hyperparameter value",
        lambda s: make_probe(configs=[{"lr": float("nan")}, {"lr": 0.1}]),
        ValueError,
        r"Config key 'lr' has the non-finite value nan",
    ),
    (
        "a float range that is empty",
        lambda s: SearchSpace([Float("lr", 0.1, 0.1, log=True)]),
        ValueError,
        r"Hyperparameter 'lr' has an empty range: 'low' must be < 'high'. Got low=0.1, high=0.1",
    ),
    (
        "an int range upside down",
        lambda s: Int("width", 64, 8),
        ValueError,
        r"Hyperparameter 'width' has an empty range.*Got low=64, high=8",
    ),
    (
        "a categorical without choices",
        lambda s: Categorical("optimizer", []),
        ValueError,
        r"The 'choices' of Categorical hyperparameter 'optimizer' must not be empty",
    ),
    (
        "a log scale starting at 0",
        lambda s: Float("lr", 0.0, 1.0, log=True),
        ValueError,
        r"Hyperparameter 'lr' is on a log scale, so 'low' must be > 0. Got low=0.0",
    ),
    # ------------------------------------------------------------ user functions
    (
        "a model_fn that raises",
        lambda s: make_probe(model_fn=lambda config: 1 / 0).run_successive_halving(0.5, 1.0, 2),
        StudyFailedError,
        r"All 4 evaluations failed; the first failed because: model_fn raised "
        r"ZeroDivisionError: division by zero",
    ),
    (
        "an optimizer_fn that returns None",
        lambda s: make_probe(optimizer_fn=lambda model, config: None).run_successive_halving(
            0.5, 1.0, 2
        ),
        StudyFailedError,
        r"optimizer_fn returned NoneType; it must return a torch.optim.Optimizer",
    ),
    (
        "a model_fn that returns no module",
        lambda s: make_probe(model_fn=lambda config: "mlp").run_successive_halving(0.5, 1.0, 2),
        StudyFailedError,
        r"model_fn returned str; it must return a torch.nn.Module",
    ),
    (
        "a model_fn that is not a function",
        lambda s: make_probe(model_fn="mlp"),
        TypeError,
        r"The 'model_fn' parameter must be callable. Got str",
    ),
    (
        "the loss class instead of a loss",
        lambda s: make_probe(criterion=nn.CrossEntropyLoss),
        TypeError,
        r"must be a loss module instance such as nn.CrossEntropyLoss\(\). Got the class "
        r"CrossEntropyLoss itself; add the parentheses",
    ),
    (
        "a lambda model_fn sent to worker processes",
        _lambda_in_worker_processes,
        TypeError,
        r"Evaluations run in worker processes, so .* must be picklable.*lambda.*Define these "
        r"functions at module level",
    ),
    # ------------------------------------------------------------ run arguments
    (
        "reduction_factor of 1",
        lambda s: make_probe().run_successive_halving(0.1, 0.5, 1),
        ValueError,
        r"The 'reduction_factor' parameter of SuccessiveHalving must be an int >= 2. Got 1",
    ),
    (
        "min_resource above max_resource",
        lambda s: make_probe().run_hyperband(0.9, 0.5),
        ValueError,
        r"The 'min_resource' parameter of Hyperband must be <= 'max_resource'",
    ),
    (
        "zero workers",
        lambda s: make_probe(n_workers=0),
        ValueError,
        r"The 'n_workers' parameter of TwoTierProbing must be an int >= 1. Got 0",
    ),
    (
        "an unknown objective",
        lambda s: make_probe(objective="accuracy"),
        ValueError,
        r"The 'objective' parameter must be one of 'auto', 'val_accuracy', 'val_loss'",
    ),
    (
        "an unknown executor",
        lambda s: make_executor("threads"),  # type: ignore[arg-type]
        ValueError,
        r"The 'kind' parameter of make_executor must be one of \('inprocess', 'process', 'dask'\)",
    ),
    (
        "a negative number of retries",
        lambda s: Runner(
            RandomSearch(SearchSpace([Float("x", 0, 1)]), n_trials=1), print, max_retries=-1
        ),
        ValueError,
        r"The 'max_retries' parameter of Runner must be an int >= 0. Got -1",
    ),
    # ------------------------------------------------------------ storage
    (
        "a storage URL of another database",
        lambda s: make_probe(storage="mysql://user:secret@host/db").run_successive_halving(
            0.5, 1.0, 2
        ),
        ValueError,
        r"The 'storage' parameter of KnowledgeBase.open must be .*Got 'mysql://user:\*\*\*@host",
    ),
    (
        "a storage that is a number",
        lambda s: KnowledgeBase.open(42),  # type: ignore[arg-type]
        TypeError,
        r"The 'storage' parameter of KnowledgeBase.open must be .* Got int 42 instead",
    ),
    (
        "a PostgreSQL URL without a database",
        lambda s: KnowledgeBase.open("postgresql://user@localhost"),
        ValueError,
        r"must name a database in a PostgreSQL URL",
    ),
    (
        "a folder as storage",
        lambda s: KnowledgeBase.open(s.tmp),
        KnowledgeBaseError,
        r"it is a directory; give the path of a file",
    ),
    (
        "random bytes as a knowledge base",
        lambda s: KnowledgeBase.open(s.file("noise.db", bytes(range(256)) * 40)),
        KnowledgeBaseError,
        r"the file is not a SQLite database .* Nothing was written to it",
    ),
    (
        "a pickle as a knowledge base",
        lambda s: KnowledgeBase.open(s.file("kb.pkl", pickle.dumps({"__reduce__": "os.system"}))),
        KnowledgeBaseError,
        r"the file is not a SQLite database",
    ),
    (
        "a truncated knowledge base",
        lambda s: KnowledgeBase.open(
            s.file("cut.db", s.kb_path.read_bytes()[: s.kb_path.stat().st_size // 2])
        ),
        KnowledgeBaseError,
        r"the SQLite file is truncated or corrupted .* Restore it from a backup",
    ),
    (
        "a knowledge base from a newer llp",
        lambda s: KnowledgeBase.open(
            s.tampered_kb("newer.db", "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        ),
        KnowledgeBaseError,
        r"was created by a newer llp \(schema 99\); this llp .* reads schema 3",
    ),
    (
        "a knowledge base missing a table",
        lambda s: KnowledgeBase.open(s.tampered_kb("partial.db", "DROP TABLE evaluations")),
        KnowledgeBaseError,
        r"is corrupted: tables \['evaluations'\] are missing",
    ),
    (
        "a stored curve that is not JSON",
        lambda s: s.on_kb(
            KnowledgeBase.evaluations,
            s.tampered_kb("garbled.db", "UPDATE evaluations SET curve = '{{' WHERE id = 2"),
        ),
        KnowledgeBaseError,
        r"is corrupted: evaluation 2 cannot be read back \(JSONDecodeError",
    ),
    (
        "another application's database",
        lambda s: KnowledgeBase.open(s.tampered_kb("other.db", "DROP TABLE meta")),
        KnowledgeBaseError,
        r"it holds tables but no llp 'meta' table, so it belongs to another application",
    ),
    # ------------------------------------------------------------ the stored study itself
    (
        "resuming a stored study with other settings",
        lambda s: make_probe(storage=s.kb_path, study_name=STUDY).run_successive_halving(
            0.5, 1.0, 3
        ),
        ValueError,
        r"The study 'digits-sh' already exists with other 'settings': "
        r"settings\['reduction_factor'\] is 2 in the knowledge base but 3 was asked",
    ),
    (
        "overwriting a finished evaluation",
        lambda s: s.record(*first_stored(s.kb_path), score=0.123),
        DuplicateEvaluationError,
        r"Trial 0 of study 'digits-sh' already has a finished evaluation at fraction=0.5, "
        r"epochs=1 .* that differs in .*score",
    ),
    (
        "recording another configuration under a stored trial",
        lambda s: s.record(0, {"lr": 0.5, "width": 8, "optimizer": "sgd"}),
        ValueError,
        r"The 'config' parameter of KnowledgeBase.record_evaluation must be the configuration "
        r"trial 0 of study 'digits-sh' was first recorded with",
    ),
    (
        "meta-features that are not numbers",
        lambda s: s.on_kb(lambda kb: kb.upsert_dataset("x", meta_features={"n": "ten"})),
        TypeError,
        r"The 'meta_features' parameter of KnowledgeBase.upsert_dataset must be a mapping of "
        r"a str .* to a finite number >= -1e\+30 and <= 1e\+30. Got 'n': 'ten' in it",
    ),
    (
        "meta-features that an export of them could not import",
        lambda s: s.on_kb(lambda kb: kb.upsert_dataset("x", meta_features={"n": float("nan")})),
        ValueError,
        r"The 'meta_features' parameter of KnowledgeBase.upsert_dataset must be a mapping of "
        r"a str .* to a finite number >= -1e\+30 and <= 1e\+30. Got 'n': nan in it",
    ),
    # ------------------------------------------------------------ imported files
    (
        "a shipped-knowledge file that is a pickle",
        _pickled_corpus,
        ValueError,
        r"The knowledge file .*hostile.jsonl.gz' is malformed: record 1 is not valid JSON",
    ),
    (
        "a shipped-knowledge file nested 100,000 deep",
        _deep_corpus,
        ValueError,
        r"The knowledge file .*deep.jsonl.gz' is malformed: record 1 breaks the record "
        r"schema: Expected `object`, got `array`",
    ),
    # ------------------------------------------------------------ the command line
    (
        "llp kb import: an export that rewrites a stored result",
        lambda s: s.llp("kb", "import", s.export(_conflicting_score), "--storage", s.kb_path),
        CommandFailed,
        r"exit 2: llp kb import: error: .*is stored in .* with other results; a finished "
        r"evaluation is never overwritten. Nothing was imported",
    ),
    (
        "llp kb import: an export with an object where a value belongs",
        lambda s: s.llp("kb", "import", s.export(_object_config), "--storage", s.kb_path),
        CommandFailed,
        r"exit 2: llp kb import: error: .* is not a valid llp export: .*evaluations\[0\]: "
        r"Expected `bool \| int \| float \| str \| null`, got `object` - at `\$\.config",
    ),
    (
        "llp kb import: an export from a newer llp",
        lambda s: s.llp(
            "kb",
            "import",
            s.export(lambda d: d.__setitem__("format_version", 99)),
            "--storage",
            s.kb_path,
        ),
        CommandFailed,
        r"exit 2: .*'format_version' is 99, newer than the 2 this llp .* reads",
    ),
    (
        "llp kb import: a pickle instead of an export",
        lambda s: s.llp(
            "kb", "import", s.file("export.json", b"\x80\x04K\x01."), "--storage", s.kb_path
        ),
        CommandFailed,
        r"exit 2: llp kb import: error: Cannot read '.*export.json': 'utf-8' codec can't decode",
    ),
    (
        "llp kb list: a corrupted knowledge base",
        lambda s: s.llp("kb", "list", "--storage", s.file("noise.db", b"\x00" * 4096)),
        CommandFailed,
        r"exit 2: llp kb list: error: Cannot open the knowledge base at .*noise.db'",
    ),
    (
        "llp kb list: a storage URL of another database",
        lambda s: s.llp("kb", "list", "--storage", "mysql://user@host/db"),
        CommandFailed,
        r"exit 2: llp kb list: error: The '--storage' option is not usable",
    ),
    (
        "llp kb show: a study that is not there",
        lambda s: s.llp("kb", "show", "no-such-study", "--storage", s.kb_path),
        CommandFailed,
        r"exit 2: llp kb show: error: The knowledge base .* has no study or dataset "
        r"'no-such-study'",
    ),
    (
        "llp tune: zero workers",
        lambda s: s.llp("tune", "digits", "--workers", "0", "--storage", s.kb_path),
        CommandFailed,
        r"exit 2: llp tune: error: The '--workers' option must be an int >= 1. Got 0",
    ),
]


def test_the_catalogue_is_large_enough() -> None:
    assert len(ROWS) >= 30
    assert len({name for name, *_ in ROWS}) == len(ROWS)


@pytest.mark.parametrize(("name", "call", "error", "match"), ROWS, ids=[name for name, *_ in ROWS])
def test_a_bad_input_gets_a_clear_message_and_leaves_the_knowledge_base_intact(
    template: Path,
    tmp_path: Path,
    name: str,
    call: Callable[[Setting], Any],
    error: type[BaseException],
    match: str,
) -> None:
    kb_path = tmp_path / "knowledge.db"
    shutil.copy(template, kb_path)
    before = stored_state(kb_path)
    assert before["counts"]["evaluations"] == 6
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(error, match=match):
        call(Setting(kb_path, scratch, template))
    assert stored_state(kb_path) == before
