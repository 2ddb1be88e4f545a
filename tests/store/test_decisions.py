"""A study's decisions and its answer after every evaluation, stored as data."""

from __future__ import annotations

import math

import pytest

from llp.search import Job
from llp.store import DecisionRecord, KnowledgeBase, NewAnswer
from llp.training import Fidelity
from tests.conftest import fake_result


def study_with_evaluations(kb: KnowledgeBase, n: int = 3) -> int:
    study = kb.get_or_create_study(
        "s", scheduler="MetaProbing", settings={}, space=None, seed=0, objective="val_accuracy"
    )
    for trial in range(n):
        job = Job(trial, trial, {"lr": 0.1 * (trial + 1)}, Fidelity(0.5, 2), 0, 0, "r")
        kb.record_evaluation(
            study.id,
            trial_number=trial,
            config=job.config,
            result=fake_result(job, 0.5 + trial / 10),
        )
    return study.id


def test_decisions_are_stored_once_in_order_with_every_field(storage: str) -> None:
    with KnowledgeBase.open(storage) as kb:
        study = study_with_evaluations(kb)
        made = [
            DecisionRecord(0, "proposed", "zero-shot pick", "the pick", trial_number=0,
                           rung=0, fraction=0.5, epochs=2, source="prior", predicted=0.9,
                           prior_score=0.9),
            DecisionRecord(1, "promoted", "posterior", "up", trial_number=0, bracket=0, rung=1,
                           fraction=1.0, epochs=2, source="prior", measured=0.71,
                           posterior=0.7012345678901234, prior_weight=0.25),
            DecisionRecord(2, "stopped", "budget", "the budget is spent"),
        ]  # fmt: skip
        assert kb.record_decisions(study, made[1:]) == 2
        # Made again (a resumed study): each kept once, the stored one unchanged.
        assert kb.record_decisions(study, [made[0], made[1]]) == 1
        stored = kb.decisions("s")
    assert [d.sequence for d in stored] == [0, 1, 2]
    for ours, theirs in zip(made, stored, strict=True):
        assert theirs.created_at is not None
        fields = set(DecisionRecord.__dataclass_fields__) - {"created_at"}
        assert {f: getattr(theirs, f) for f in fields} == {f: getattr(ours, f) for f in fields}
    assert stored[1].posterior == 0.7012345678901234  # exact, never rounded


def test_the_answer_after_each_evaluation_is_stored_once(storage: str) -> None:
    with KnowledgeBase.open(storage) as kb:
        study = study_with_evaluations(kb)
        kb.record_answers(
            study,
            [
                ((0, 0.5, 2), NewAnswer(0, 0.5, 2, rule="posterior", note="only one")),
                ((1, 0.5, 2), NewAnswer(0, 0.5, 2, rule="posterior", note="kept", posterior=0.6)),
            ],
        )
        kb.record_answer(
            study, after=(1, 0.5, 2), answer=NewAnswer(1, 0.5, 2, rule="posterior", note="late")
        )
        assert kb.answer("s").note == "kept"  # the first answer after an evaluation stays
        kb.record_answer(
            study, after=(2, 0.5, 2), answer=NewAnswer(2, 0.5, 2, rule="best", note="new best")
        )
        answers = kb.answers("s")
        latest = kb.answer("s")
    assert [(a.trial_number, a.note) for a in answers] == [
        (0, "only one"),
        (0, "kept"),
        (2, "new best"),
    ]
    assert latest == answers[-1]
    assert latest.score == pytest.approx(0.7) and latest.config == {"lr": pytest.approx(0.3)}
    assert answers[1].posterior == 0.6 and answers[0].posterior is None


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda kb, s: kb.record_decisions(
                s, [DecisionRecord(0, "promoted", "posterior", "w", predicted=math.nan)]
            ),
            ValueError,
            r"'predicted' parameter of KnowledgeBase.record_decisions \(decisions\[0\]\) must "
            r"be a finite number",
        ),
        (
            lambda kb, s: kb.record_decisions(
                s, [DecisionRecord(0, "proposed", "r", "w", fraction=1.5)]
            ),
            ValueError,
            r"'fraction' parameter .* must be a finite number > 0 and <= 1, or None. Got 1.5",
        ),
        (
            lambda kb, s: kb.record_decisions(s, [DecisionRecord(0, "exploded", "r", "w")]),
            ValueError,
            r"'action' parameter .* must be one of 'proposed', 'promoted', .* Got 'exploded'",
        ),
        (
            lambda kb, s: kb.record_decisions(s, [DecisionRecord(-1, "proposed", "r", "w")]),
            ValueError,
            r"'sequence' parameter .* must be an int >= 0",
        ),
        (
            lambda kb, s: kb.record_decisions(s, [{"sequence": 0}]),
            TypeError,
            r"'decisions' parameter of KnowledgeBase.record_decisions must hold DecisionRecord",
        ),
        (
            lambda kb, s: kb.record_decisions(s + 99, [DecisionRecord(0, "proposed", "r", "w")]),
            ValueError,
            r"'study_id' parameter of KnowledgeBase.record_decisions must be the id of a stored",
        ),
        (
            lambda kb, s: kb.record_answer(
                s, after=(0, 0.5, 2), answer=NewAnswer(7, 0.5, 2, rule="r", note="n")
            ),
            ValueError,
            r"'answer' parameter of KnowledgeBase.record_answer must name an evaluation stored "
            r"in study .* trial 7",
        ),
        (
            lambda kb, s: kb.record_answer(
                s, after=(0, 1.0, 2), answer=NewAnswer(0, 0.5, 2, rule="r", note="n")
            ),
            ValueError,
            r"'after' parameter of KnowledgeBase.record_answer must name an evaluation stored",
        ),
        (
            lambda kb, s: kb.record_answer(
                s, after=(0, 0.5), answer=NewAnswer(0, 0.5, 2, rule="r", note="n")
            ),
            TypeError,
            r"'after' parameter .* must be a tuple \(trial_number, fraction, epochs\)",
        ),
        (
            lambda kb, s: kb.record_answer(
                s, after=(0, 0.5, 2), answer=NewAnswer(0, 0.5, 2, rule="r\x00", note="n")
            ),
            ValueError,
            r"'rule' parameter .* must be a str \(a text that is not blank and holds no NUL "
            r"character\) of at most 1000 characters",
        ),
        (lambda kb, s: kb.decisions("nope"), KeyError, r"no study called 'nope'"),
    ],
)
def test_bad_decisions_and_answers_are_refused_and_nothing_is_written(
    storage: str, call, error: type[Exception], match: str
) -> None:
    with KnowledgeBase.open(storage) as kb:
        study = study_with_evaluations(kb)
        kb.record_answer(
            study, after=(0, 0.5, 2), answer=NewAnswer(0, 0.5, 2, rule="r", note="first")
        )
        with pytest.raises(error, match=match):
            call(kb, study)
        assert kb.decisions("s") == []
        assert [a.note for a in kb.answers("s")] == ["first"]


def test_one_process_at_a_time_holds_a_study(storage: str) -> None:
    from llp.store import StudyBusyError

    with KnowledgeBase.open(storage) as first, KnowledgeBase.open(storage) as second:
        with first.study_lock("s"):
            if first.backend != "memory":  # two in-memory bases share nothing
                busy = pytest.raises(StudyBusyError, match="'s' is being run by another")
                with busy, second.study_lock("s"):
                    pass
            with second.study_lock("another study"):
                pass
        with second.study_lock("s"):  # released
            pass


def test_names_longer_than_the_limit_are_refused(kb: KnowledgeBase) -> None:
    from llp.store._file_records import MAX_NAME

    long = "x" * (MAX_NAME + 1)
    with pytest.raises(ValueError, match=rf"'name' parameter .* at most {MAX_NAME} characters"):
        kb.get_or_create_study(
            long, scheduler="S", settings={}, space=None, seed=0, objective="val_accuracy"
        )
    with pytest.raises(ValueError, match=rf"'group' parameter .* at most {MAX_NAME} characters"):
        kb.upsert_dataset("fp", group=long)
    assert kb.counts() == {"datasets": 0, "studies": 0, "trials": 0, "evaluations": 0}


def test_a_text_longer_than_the_limit_is_refused(kb: KnowledgeBase) -> None:
    from llp.store._file_records import MAX_TEXT

    study = study_with_evaluations(kb, n=0)
    job = Job(0, 0, {"lr": 0.1}, Fidelity(0.5, 2), 0, 0, "r")
    with pytest.raises(ValueError, match=rf"'reason' parameter .* at most {MAX_TEXT} char"):
        kb.record_evaluation(
            study, trial_number=0, config=job.config, result=fake_result(job, 0.5),
            reason="x" * (MAX_TEXT + 1),
        )  # fmt: skip
    assert kb.counts()["evaluations"] == 0


def test_a_lock_folder_that_cannot_be_made_does_not_stop_the_study(tmp_path) -> None:
    path = tmp_path / "kb.db"
    with KnowledgeBase.open(path) as kb:
        (tmp_path / "kb.db.locks").write_text("a file where the lock folder would go")
        with kb.study_lock("s"):  # no lock can be taken here; the study is not refused
            assert kb.get_study("s") is None
