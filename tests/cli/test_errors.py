"""Every user mistake exits with status 2 and one clear line on stderr, never a traceback.

Each case shows the mistake next to the message it must produce (scikit-learn's
``test_input_errors`` style).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from llp.store import KnowledgeBase
from tests.cli.conftest import FAST, invoke, modules_after


def assert_user_error(args: list[object], message: str) -> str:
    """Exit status 2, one line on stderr matching ``message``, no traceback."""
    result = invoke(args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1, result.stderr
    assert re.search(message, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def bad_files(tmp_path: Path) -> Callable[[str, str], Path]:
    def make(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def test_missing_data_file(storage: Path) -> None:
    assert_user_error(
        ["tune", "no/such/file.csv", "--storage", storage, *FAST],
        r"llp tune: error: DATA 'no/such/file\.csv' is neither an existing file nor a "
        r"built-in dataset \(built-ins: digits, digits-images, iris, wine, breast_cancer\)",
    )


def test_unknown_target_column(digits_csv: Path, storage: Path) -> None:
    assert_user_error(
        ["tune", digits_csv, "--target", "species", "--storage", storage, *FAST],
        r"The '--target' column 'species' is not in DATA .*digits\.csv'\. Columns: x0, x1, ",
    )


def test_unknown_npz_label_array(tmp_path: Path, storage: Path) -> None:
    import numpy as np

    path = tmp_path / "arrays.npz"
    np.savez(path, X=np.zeros((10, 3)), y=np.arange(10) % 2)
    assert_user_error(
        ["tune", path, "--target", "labels", "--storage", storage, *FAST],
        r"The '--target' array 'labels' is not in DATA .*arrays\.npz'\. Arrays: X, y\.",
    )


def test_unsupported_suffix(bad_files: Callable[[str, str], Path], storage: Path) -> None:
    path = bad_files("data.xlsx", "x")
    assert_user_error(
        ["tune", path, "--storage", storage, *FAST],
        r"has the suffix '\.xlsx'; llp reads \.csv, \.tsv, \.parquet and \.npz files",
    )


def test_continuous_target_is_refused(bad_files: Callable[[str, str], Path], storage: Path) -> None:
    rows = "\n".join(f"{i},{i * 0.37 + 0.1:.3f}" for i in range(200))
    path = bad_files("prices.csv", "size,price\n" + rows + "\n")
    assert_user_error(
        ["tune", path, "--storage", storage, *FAST],
        r"has a continuous target 'price'; the llp command tunes classifiers",
    )


def test_cnn_on_a_table(digits_csv: Path, storage: Path) -> None:
    assert_user_error(
        ["tune", digits_csv, "--family", "cnn", "--storage", storage, *FAST],
        r"The '--family' option 'cnn' needs image or signal arrays.* Use --family mlp or resmlp",
    )


def test_an_unknown_family_names_the_choices(digits_csv: Path, storage: Path) -> None:
    assert_user_error(
        ["tune", digits_csv, "--family", "transformer", "--storage", storage, *FAST],
        r"The '--family' option must be one of 'auto', 'mlp', 'resmlp', 'cnn'\. "
        r"Got 'transformer' instead\.",
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "space.toml",
            "[[hyperparameters]\nname = 'lr'",
            r"The space file '.*space\.toml' is not valid TOML: ",
        ),
        (
            "space.yaml",
            "hyperparameters: [name: lr",
            r"The space file '.*space\.yaml' is not valid YAML: ",
        ),
        (
            "space.toml",
            "[[hyperparameters]]\nname = 'lr'\ntype = 'float'\nlow = 1.0\nhigh = 0.1\n",
            r"The space file '.*space\.toml' is not a valid search space: hyperparameters\[0\]",
        ),
        (
            "space.toml",
            "[[hyperparameters]]\nname = 'momentum'\ntype = 'float'\nlow = 0.5\nhigh = 0.99\n",
            r"names 'momentum', which the mlp, resmlp and cnn families do not read "
            r"\(they read lr, ",
        ),
        (
            "space.toml",
            "[[hyperparameters]]\nname = 'lr'\ntype = 'float'\nlow = 0.001\nhigh = 0.1\n",
            r"must define 'width', 'optimizer' \(the families need lr, width, optimizer\)",
        ),
        (
            "space.json",
            '{"hyperparameters": [{"name": "lr", "type": "float", "low": 0.001, "high": 0.1},'
            '{"name": "width", "type": "int", "low": 8, "high": 64},'
            '{"name": "optimizer", "type": "categorical", "choices": ["sgd", "rmsprop"]}]}',
            r"must make 'optimizer' categorical with choices among 'sgd', 'adam'",
        ),
        ("space.ini", "[x]", r"must end in \.toml, \.yaml, \.yml or \.json\. Got '\.ini'"),
    ],
)
def test_bad_space_file(
    bad_files: Callable[[str, str], Path], storage: Path, name: str, text: str, message: str
) -> None:
    path = bad_files(name, text)
    assert_user_error(["tune", "iris", "--space", path, "--storage", storage, *FAST], message)


def test_missing_space_file(storage: Path) -> None:
    assert_user_error(
        ["tune", "iris", "--space", "nope.toml", "--storage", storage, *FAST],
        r"The space file 'nope\.toml' does not exist",
    )


def test_storage_that_is_not_a_knowledge_base(
    bad_files: Callable[[str, str], Path],
) -> None:
    path = bad_files("notes.db", "these are my notes, not a database\n" * 10)
    assert_user_error(
        ["tune", "iris", "--storage", path, *FAST],
        r"llp tune: error: Cannot open the knowledge base at '.*notes\.db': the file is not "
        r"a SQLite database",
    )


def test_unreachable_postgresql_storage() -> None:
    pytest.importorskip("psycopg")
    assert_user_error(
        ["tune", "iris", "--storage", "postgresql://llp:secret@127.0.0.1:9/llp", *FAST],
        r"Cannot open the PostgreSQL knowledge base 'postgresql\+psycopg://llp:\*\*\*@"
        r"127\.0\.0\.1:9/llp'",
    )


def test_storage_url_of_another_kind() -> None:
    assert_user_error(
        ["kb", "list", "--storage", "mysql://localhost/llp"],
        r"The '--storage' option is not usable: The 'storage' parameter of "
        r"KnowledgeBase\.open must be .* Got 'mysql://localhost/llp' instead",
    )


def test_budget_too_small_for_one_configuration(storage: Path) -> None:
    assert_user_error(
        ["tune", "iris", "--budget", "0.3", "--storage", storage, *FAST],
        r"The '--budget' option must be at least 0\.4 full-data epochs \(one evaluation of "
        r"3 epochs on 12\.5% of the data\) to train anything\. Got 0\.3 instead; .* There is no "
        r"prediction to answer with either: The knowledge base .* does not exist",
    )


def test_negative_budget(storage: Path) -> None:
    assert_user_error(
        ["tune", "iris", "--budget", "-1", "--storage", storage, *FAST],
        r"The '--budget' option must be a number > 0\. Got -1 instead\.",
    )


def test_unknown_prior(storage: Path) -> None:
    assert_user_error(
        ["tune", "iris", "--storage", storage, "--epochs", "3", "--prior", "magic"],
        r"The '--prior' option must be one of 'default', 'shipped', 'store', 'none'\. "
        r"Got 'magic' instead\.",
    )


def test_target_with_a_builtin_dataset(storage: Path) -> None:
    assert_user_error(
        ["tune", "iris", "--target", "species", "--storage", storage, *FAST],
        r"The '--target' option does not apply to the built-in dataset 'iris'",
    )


def test_report_of_an_unknown_study(tuned: dict[str, object]) -> None:
    assert_user_error(
        ["report", "no-such-study", "--storage", tuned["storage_path"]],
        r"llp report: error: There is no study 'no-such-study' in the knowledge base .* "
        r"\(stored studies: digits-mlp-",
    )


def test_report_of_a_knowledge_base_that_does_not_exist(tmp_path: Path) -> None:
    assert_user_error(
        ["report", "x", "--storage", tmp_path / "absent.db"],
        r"The knowledge base '.*absent\.db' does not exist .* run 'llp tune' first",
    )


def test_kb_show_of_an_unknown_name(tuned: dict[str, object]) -> None:
    assert_user_error(
        ["kb", "show", "nothing", "--storage", tuned["storage_path"]],
        r"has no study or dataset 'nothing'",
    )


def test_export_of_an_unknown_study(tuned: dict[str, object], tmp_path: Path) -> None:
    assert_user_error(
        [
            "kb",
            "export",
            tmp_path / "x.json",
            "--study",
            "ghost",
            "--storage",
            tuned["storage_path"],
        ],
        r"The '--study' option names 'ghost', not in the knowledge base",
    )


def test_export_to_an_unknown_format(tuned: dict[str, object], tmp_path: Path) -> None:
    assert_user_error(
        ["kb", "export", tmp_path / "x.csv", "--storage", tuned["storage_path"]],
        r"Cannot tell the format of '.*x\.csv' from its suffix '\.csv'",
    )


def test_import_of_a_missing_file(storage: Path) -> None:
    assert_user_error(
        ["kb", "import", "missing.json", "--storage", storage],
        r"The file 'missing\.json' does not exist\.",
    )


def test_import_of_a_file_that_is_not_json(
    bad_files: Callable[[str, str], Path], storage: Path
) -> None:
    path = bad_files("broken.json", "{not json")
    assert_user_error(["kb", "import", path, "--storage", storage], r"is not valid JSON: ")


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--epochs", "0", "an int >= 1"),
        ("--iterations", "0", "an int >= 1"),
        ("--reduction-factor", "1", "an int >= 2"),
        ("--workers", "0", "an int >= 1"),
        ("--seed", "-1", r"an int in \[0, 4294967295\]"),
        ("--seed", str(2**32), r"an int in \[0, 4294967295\]"),
        ("--seed", str(2**70), r"an int in \[0, 4294967295\]"),
    ],
)
def test_out_of_range_integer_options(storage: Path, option: str, value: str, rule: str) -> None:
    assert_user_error(
        ["tune", "iris", option, value, "--storage", storage],
        rf"The '{option}' option must be {rule}\. Got {value} instead\.",
    )
    with KnowledgeBase.open(storage) as kb:  # and no study is left behind
        assert kb.list_studies() == []


def test_predict_checks_its_seed_too(storage: Path) -> None:
    assert_user_error(
        ["predict", "iris", "--seed", "-1", "--storage", storage],
        r"llp predict: error: The '--seed' option must be an int in \[0, 4294967295\]\.",
    )


def test_so_many_iterations_that_the_smallest_rung_is_empty_are_refused(storage: Path) -> None:
    # iris: 120 training examples, 3 classes; 1/2**6 of them is 1.9 examples.
    assert_user_error(
        ["tune", "iris", "--iterations", "100", "--storage", storage],
        r"The '--iterations' option must be at most 6 for 120 training examples and "
        r"--reduction-factor 2: with 100 the smallest rung would hold 1\.89e-28 examples, "
        r"fewer than one per class\. Got 100 instead\.",
    )


def test_a_value_of_the_wrong_type_is_a_usage_error_with_status_2(storage: Path) -> None:
    result = invoke(["tune", "iris", "--epochs", "ten", "--storage", storage])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--epochs" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["tune", "missing.csv"], "'missing.csv' is neither an existing file"),
        (["report", "nosuch", "--storage", "kb.db"], "There is no study 'nosuch'"),
    ],
)
def test_a_mistake_is_reported_before_the_heavy_imports(
    tmp_path: Path, args: list[str], said: str
) -> None:
    """The mistake is said before PyTorch, scikit-learn or the meta-model load (what
    makes a first error slow), in a fresh interpreter as a user runs it."""
    from llp.store import KnowledgeBase

    KnowledgeBase.open(tmp_path / "kb.db").close()
    code, heavy, err = modules_after(args, tmp_path, ["torch", "sklearn", "llp.meta_probing"])
    assert (code, heavy) == (2, []), err
    assert said in " ".join(err.split())


@pytest.mark.parametrize("name", ["../..", "/etc/llp", "a/../../b", "..", ".hidden", "x\ny", ""])
def test_a_hostile_study_name_never_leads_the_report_out_of_its_folder(name: str) -> None:
    from llp.cli._storage import report_folder

    base = Path("llp-runs/reports").resolve()
    folder = report_folder(name).resolve()
    assert folder.parent == base and folder.name not in ("", ".", "..")
    assert report_folder("digits-mlp-1a2b3c4d").name == "digits-mlp-1a2b3c4d"  # names kept
    assert report_folder("a/b") != report_folder("a_b")  # no two studies share a folder


@pytest.mark.parametrize(
    ("command", "name", "text", "said"),
    [
        ("import", "deep.json", "[" * 200_000 + "]" * 200_000, "is nested too deeply"),
        ("space", "deep.json", "[" * 200_000 + "]" * 200_000, "is nested too deeply"),
        ("space", "deep.toml", "x = " + "[" * 200_000 + "]" * 200_000, "is nested too deeply"),
    ],
)
def test_deeply_nested_files_are_a_one_line_error(
    tmp_path: Path, storage: Path, command: str, name: str, text: str, said: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    args = (
        ["kb", "import", path, "--storage", storage]
        if command == "import"
        else ["tune", "iris", "--space", path, "--storage", storage]
    )
    assert_user_error(args, said)
    if storage.exists():  # nothing was written
        with KnowledgeBase.open(storage) as kb:
            assert kb.counts()["evaluations"] == 0 and kb.list_studies() == []


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_data_that_would_expand_beyond_the_limit_is_refused_before_loading(
    tmp_path: Path, storage: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    import numpy as np
    import pandas as pd

    import llp.cli._data as data_module

    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"bomb{suffix}"
    X, y = np.zeros((2000, 8)), np.arange(2000) % 2  # compresses to almost nothing
    if suffix == ".npz":
        np.savez_compressed(path, X=X, y=y)
    else:
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
        frame["label"] = y
        frame.to_parquet(path)
    assert path.stat().st_size < 20_000
    monkeypatch.setattr(data_module, "MAX_INPUT_BYTES", 100_000)  # stands in for 256 MiB
    assert_user_error(
        ["tune", path, "--storage", storage, *FAST],
        rf"DATA '.*bomb\{suffix}' holds 0 MiB of .*, more than the 0 MiB llp tune reads "
        r"\(checked before loading",
    )
