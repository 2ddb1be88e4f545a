"""The knowledge file: distil round trip, and every kind of bad file refused clearly."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llp.knowledge import FORMAT_VERSION, read_corpus, select_experiences
from llp.store import KnowledgeBase
from llp.training import EvaluationStatus

from .conftest import fill_knowledge_base, read_records, write_records

Records = list[dict[str, Any]]


def test_distill_round_trips_every_evaluation(make_corpus_file: Callable[..., Path]) -> None:
    path = make_corpus_file(datasets=3, configs=3)
    corpus = read_corpus(path, cache=False)
    with KnowledgeBase.open(":memory:") as kb:
        fill_knowledge_base(kb, datasets=3, configs=3)
        stored = {(e.study, e.trial_number, e.fidelity): e for e in kb.evaluations()}
    assert len(corpus.experiences) == len(stored) == 3 * 3 * 2
    assert corpus.header["format_version"] == FORMAT_VERSION
    for exp in corpus.experiences:
        original = stored[(exp.study, exp.trial, exp.result.fidelity)].result
        got = exp.result
        assert dict(got.config) == dict(original.config)  # configs are never rounded
        assert got.status is original.status
        assert got.failure_reason == original.failure_reason
        assert got.traceback is None  # tracebacks stay in the knowledge base
        assert len(got.curve) == len(original.curve)
        for a, b in zip(got.curve, original.curve):
            assert a.epoch == b.epoch
            for x, y in ((a.train_loss, b.train_loss), (a.val_loss, b.val_loss)):
                assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-5)
        if got.ok:
            assert got.score == pytest.approx(original.score, rel=1e-5)
            assert got.landscape["landscape_loss"] == pytest.approx(0.123457)
            assert math.isnan(got.landscape["landscape_hessian_top_eig"])  # null <-> NaN
    assert {d.group for d in corpus.datasets} == {"group-0", "group-1"}
    assert corpus.model_families == ("cnn", "mlp")


def test_distill_writes_strict_json_with_rounded_floats(
    make_corpus_file: Callable[..., Path],
) -> None:
    path = make_corpus_file()
    text = gzip.decompress(path.read_bytes()).decode()
    for line in text.splitlines():  # strict JSON: no NaN or Infinity tokens
        json.loads(line, parse_constant=lambda token: pytest.fail(f"token {token}"))
    evaluation = next(r for r in read_records(path) if r["kind"] == "evaluation")
    # A non-finite value is written by name, as in exports (format 2).
    assert evaluation["landscape"]["landscape_hessian_top_eig"] == "NaN"
    assert evaluation["seconds"] == 0.03123  # 4 significant digits for wall times
    assert evaluation["landscape"]["landscape_loss"] == 0.123457  # 6 for the rest


def test_distill_refuses_a_knowledge_base_without_design_studies(tmp_path: Path) -> None:
    with (
        KnowledgeBase.open(":memory:") as kb,
        pytest.raises(ValueError, match="holds no study with scheduler 'FixedDesign'"),
    ):
        from llp.knowledge import distill

        distill(kb, tmp_path / "x.jsonl.gz")


def test_select_experiences_excludes_groups_and_datasets(
    make_corpus_file: Callable[..., Path],
) -> None:
    corpus = read_corpus(make_corpus_file(datasets=4))
    everything = select_experiences(corpus)
    without = select_experiences(corpus, exclude_groups=["group-0"])
    assert {e.group for e in everything} == {"group-0", "group-1"}
    assert {e.group for e in without} == {"group-1"}
    by_name = select_experiences(corpus, exclude_datasets=["toy-1"])
    fingerprint = next(d.fingerprint for d in corpus.datasets if d.name == "toy-1")
    by_fingerprint = select_experiences(corpus, exclude_datasets=[fingerprint])
    assert by_name == by_fingerprint
    assert fingerprint not in {e.dataset for e in by_name}
    assert len(by_name) == len(everything) * 3 // 4


@pytest.mark.parametrize("parameter", ["exclude_groups", "exclude_datasets"])
def test_select_experiences_refuses_a_bare_string(
    make_corpus_file: Callable[..., Path], parameter: str
) -> None:
    corpus = read_corpus(make_corpus_file())
    with pytest.raises(TypeError, match=f"The '{parameter}' parameter must be a list of str"):
        select_experiences(corpus, **{parameter: "group-0"})


def test_read_corpus_caches_until_the_file_changes(make_corpus_file: Callable[..., Path]) -> None:
    path = make_corpus_file()
    first = read_corpus(path)
    assert read_corpus(path) is first
    make_corpus_file(datasets=3)  # rewrites the same path
    again = read_corpus(path)
    assert again is not first and len(again.datasets) == 3


def test_read_corpus_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No knowledge file at"):
        read_corpus(tmp_path / "absent.jsonl.gz")


# --------------------------------------------------------------------------- tampering
def _first(records: Records, kind: str) -> dict[str, Any]:
    return next(r for r in records if r["kind"] == kind)


def _set(kind: str, key: str, value: Any) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        _first(records, kind)[key] = value

    return change


def _drop(kind: str, key: str) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        del _first(records, kind)[key]

    return change


def _config(key: str, value: Any) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        _first(records, "evaluation")["config"][key] = value

    return change


def _curve(key: str, value: Any) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        _first(records, "evaluation")["curve"][key] = value

    return change


def _duplicate_last(records: Records) -> None:
    records.append(dict(records[-1]))
    records[0]["counts"]["evaluations"] += 1


def _drop_last(records: Records) -> None:
    records.pop()


def _header_last(records: Records) -> None:
    records.append(records.pop(0))


def _meta_feature(value: Any) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        _first(records, "dataset")["meta_features"]["num_samples"] = value

    return change


def _drop_meta_feature(records: Records) -> None:
    del _first(records, "dataset")["meta_features"]["class_entropy"]


def _complete_without_score(records: Records) -> None:
    evaluation = next(r for r in records if r["kind"] == "evaluation" and r["status"] == "complete")
    evaluation["score"] = None


TAMPERING = [
    # (what is wrong, change, record number named, expected words)
    ("score is a string", _set("evaluation", "score", "0.9"), None, r"got `str` - at `\$.score`"),
    ("score above 1", _set("evaluation", "score", 1.5), None, r"'score' must lie in \[0.0, 1.0\]"),
    ("complete without score", _complete_without_score, None, "'score' must be null exactly"),
    (
        "trial is a float",
        _set("evaluation", "trial", 1.0),
        None,
        r"`int`, got `float` - at `\$.trial`",
    ),
    (
        "trial is a bool",
        _set("evaluation", "trial", True),
        None,
        r"`int`, got `bool` - at `\$.trial`",
    ),
    ("epochs is 0", _set("evaluation", "epochs", 0), None, r"`int` >= 1 - at `\$.epochs`"),
    ("fraction above 1", _set("evaluation", "fraction", 2.0), None, r"<= 1.0 - at `\$.fraction`"),
    ("fraction 0", _set("evaluation", "fraction", 0.0), None, r"> 0.0 - at `\$.fraction`"),
    (
        "unknown status",
        _set("evaluation", "status", "running"),
        None,
        r"'running' - at `\$.status`",
    ),
    ("missing key", _drop("evaluation", "curve"), None, "missing required field `curve`"),
    (
        "extra key",
        _set("evaluation", "__reduce__", "os.system"),
        None,
        "unknown field `__reduce__`",
    ),
    (
        "reduce as kind",
        _set("evaluation", "kind", "__reduce__"),
        None,
        r"'__reduce__' - at `\$.kind`",
    ),
    (
        "reduce as a config value",
        _config("optimizer", "__reduce__"),
        None,
        "not legal in the header's space",
    ),
    ("unknown config key", _config("__reduce__", 1), None, "not legal in the header's space"),
    ("config out of range", _config("lr", 5.0), None, "not legal in the header's space"),
    (
        "config is a list",
        _set("evaluation", "config", [1, 2]),
        None,
        r"`object`, got `array` - at `\$.config`",
    ),
    ("curve lengths differ", _curve("seconds", []), None, "one equal length"),
    ("curve epochs skip", _curve("epoch", [1, 3]), None, r"curve\['epoch'\] must be 1, 2"),
    ("curve loss a string", _curve("train_loss", ["x", 1.0]), None, r"\$.curve.train_loss\[0\]"),
    ("curve accuracy above 1", _curve("val_accuracy", [1.5]), None, r"val_accuracy\[0\]"),
    ("landscape a string", _set("evaluation", "landscape", "x"), None, r"at `\$.landscape`"),
    ("unknown study", _set("evaluation", "study", "nope"), None, "refers to the study 'nope'"),
    ("blank study name", _set("study", "name", "  "), None, "a text that is not blank"),
    ("NUL in a name", _set("dataset", "name", "a\x00b"), None, "holds no NUL character"),
    ("unknown dataset", _set("study", "dataset", "f" * 64), None, "refers to the dataset"),
    ("bad fingerprint", _set("dataset", "fingerprint", "../../etc"), None, r"\$.fingerprint"),
    ("meta-feature a string", _meta_feature("big"), None, r"got `str` - at `\$.meta_features"),
    ("meta-feature infinite", _meta_feature(1e400), None, "not valid JSON.*malformed"),
    ("meta-feature missing", _drop_meta_feature, None, r"lacks \['class_entropy'\]"),
    ("duplicate evaluation", _duplicate_last, None, "repeats trial"),
    ("header not first", _header_last, 1, "must be the header"),
    ("newer format", _set("header", "format_version", FORMAT_VERSION + 1), 1, "newer than"),
    ("second header", lambda records: records.insert(2, dict(records[0])), 3, "second header"),
    ("foreign format", _set("header", "format", "pickle"), 1, "must have format"),
    ("bad space", _set("header", "space", {"hyperparameters": [{"name": "x"}]}), 1, "space"),
    ("counts mismatch", _drop_last, "end", "header announces"),
]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [pytest.param(c, w, m, id=i) for i, c, w, m in TAMPERING],
)
def test_a_tampered_file_raises_a_clear_value_error(
    make_records: Callable[[], Records],
    tmp_path: Path,
    change: Callable[[Records], None],
    where: int | str | None,
    message: str,
) -> None:
    records = make_records()
    change(records)
    path = write_records(tmp_path / "tampered.jsonl.gz", records)
    with pytest.raises(ValueError, match=message) as info:
        read_corpus(path, cache=False)
    text = str(info.value)
    assert str(path) in text
    if where != "end":
        assert re.search(r"record \d+", text)
    if isinstance(where, int):
        assert f"record {where} " in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"kind": "evaluation", "score": NaN}', "not valid JSON.*malformed"),
        ("[" * 100_000 + "]" * 100_000, "`object`, got `array`|longer than"),
        ('"just a string"', "`object`, got `str`"),
        ('{"kind": "evaluation", "score": 1e999}', "out of range"),
        ('{"kind": "header", "design": {"a": ' + "[" * 300_000 + "]" * 300_000 + "}}", "nested"),
    ],
)
def test_a_line_that_is_not_a_record_is_refused(
    make_records: Callable[[], Records], tmp_path: Path, line: str, message: str
) -> None:
    records: list[Any] = make_records()
    records.insert(2, line)
    path = write_records(tmp_path / "bad-line.jsonl.gz", records)
    with pytest.raises(ValueError, match=message) as info:
        read_corpus(path, cache=False)
    assert "record 3 " in str(info.value)


def test_a_truncated_gzip_file_is_refused(
    make_corpus_file: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_corpus_file().read_bytes()
    path = tmp_path / "truncated.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted") as info:
        read_corpus(path, cache=False)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip at all\n", "not a complete gzip file"),
        (b"", "truncated or corrupted|is empty"),
        (gzip.compress(b""), "is empty: it has no header"),
        (gzip.compress(b"\xff\xfe\x00garbage\n"), "UTF-8|not valid JSON"),
        (b"\x80\x04\x95" + b"cos\nsystem\n", "not a complete gzip file"),  # a pickle
    ],
)
def test_a_file_that_is_not_a_corpus_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "other.jsonl.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_corpus(path, cache=False)


def test_failed_evaluations_keep_their_reason(make_corpus_file: Callable[..., Path]) -> None:
    corpus = read_corpus(make_corpus_file())
    failed = [e for e in corpus.experiences if e.result.status is EvaluationStatus.FAILED]
    assert failed and all(e.result.failure_reason.startswith("diverged") for e in failed)
    assert all(e.result.score is None for e in failed)


def test_a_format_1_file_with_nulls_for_non_finite_values_is_still_read(
    make_corpus_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_corpus_file()
    records = read_records(path)
    records[0]["format_version"] = 1  # the shipped file's format: null for non-finite
    for record in records:
        if record["kind"] == "evaluation":
            landscape = record["landscape"]
            for key, value in landscape.items():
                if value == "NaN":
                    landscape[key] = None
            record["curve"]["val_loss"][0] = None
    old = tmp_path / "old.jsonl.gz"
    write_records(old, records)
    corpus = read_corpus(old, cache=False)
    assert any(math.isnan(e.result.curve[0].val_loss) for e in corpus.experiences)
    assert any(math.isnan(v) for e in corpus.experiences for v in e.result.landscape.values())


def test_the_corpus_and_an_export_write_an_evaluation_the_same_way(
    make_corpus_file: Callable[..., Path], tmp_path: Path
) -> None:
    # One field list (llp.store._codec.EVALUATION_FIELDS) for both formats: the shipped
    # knowledge's evaluation records and an export's carry the same measured fields,
    # written the same way (curves by column, non-finite floats by name).
    from llp.store import export_document
    from llp.store._codec import DATASET_FIELDS, EVALUATION_FIELDS

    with KnowledgeBase.open(tmp_path / "kb.db") as kb:
        fill_knowledge_base(kb)
        exported = export_document(kb)
    corpus = read_records(make_corpus_file())
    in_corpus = [r for r in corpus if r["kind"] == "evaluation"]
    in_export = [e for s in exported["studies"] for e in s["evaluations"]]
    assert {k for k in in_corpus[0] if k not in ("kind", "study")} == set(EVALUATION_FIELDS)
    assert set(EVALUATION_FIELDS) <= set(in_export[0])
    by_key = {(e["trial"], e["fraction"]): e for e in in_export}
    same = 0
    for record in in_corpus:
        twin = by_key.get((record["trial"], record["fraction"]))
        if twin is not None and twin["config"] == record["config"]:
            assert set(twin["curve"]) == set(record["curve"])
            assert type(twin["landscape"]) is type(record["landscape"])
            same += 1
    assert same > 0
    dataset = next(r for r in corpus if r["kind"] == "dataset")
    assert set(DATASET_FIELDS) <= set(dataset) and set(DATASET_FIELDS) <= set(
        exported["datasets"][0]
    )
