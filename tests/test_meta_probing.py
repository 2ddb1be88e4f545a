from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from torch import nn

from llp.data import FidelityData
from llp.meta_probing import MetaProbing, MetaProbingResult, PredictionRecord
from llp.search import SOURCES
from llp.space import Categorical, Float, Int, SearchSpace
from llp.training import EvaluationStatus, Fidelity
from llp.two_tier_probing import TwoTierProbing
from tests.conftest import DEVICES

SPACE = SearchSpace(
    [
        Float("lr", 1e-4, 1.0, log=True),
        Int("width", 8, 128, log=True),
        Categorical("optimizer", ("sgd", "adam")),
    ]
)


def make_model_fn(n_features: int, n_classes: int):
    def build(config):
        return nn.Sequential(
            nn.Linear(n_features, config["width"]), nn.ReLU(), nn.Linear(config["width"], n_classes)
        )

    return build


def optimizer_fn(model, config):
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=config["lr"])


def make_data(loader, seed: int = 0) -> FidelityData:
    X, y = loader(return_X_y=True)
    return FidelityData(X, y, standardize=True, seed=seed)


def make_meta(data: FidelityData, **kwargs) -> MetaProbing:
    kwargs.setdefault("prior", "none")
    kwargs.setdefault("max_epochs", 2)
    kwargs.setdefault("show_progress", False)
    return MetaProbing(
        SPACE.sample(2, seed=1),
        make_model_fn(data.input_shape[0], data.n_classes),
        data,
        nn.CrossEntropyLoss(),
        optimizer_fn,
        space=SPACE,
        model_family="mlp",
        **kwargs,
    )


def store_two_studies(db) -> None:
    """Random searches on two other datasets, same configurations: a prior in ``db``."""
    for loader in (load_breast_cancer, load_iris):
        data = make_data(loader)
        TwoTierProbing(
            SPACE.sample(6, seed=3),
            make_model_fn(data.input_shape[0], data.n_classes),
            data,
            nn.CrossEntropyLoss(),
            optimizer_fn,
            space=SPACE,
            max_epochs=2,
            show_progress=False,
            storage=db,
            model_family="mlp",
        ).run_random_search(6, resource=1.0)


def meta_with_prior(tmp_path, **kwargs) -> tuple[MetaProbing, FidelityData]:
    """MetaProbing on wine whose prior is two other datasets' studies in a knowledge base."""
    db = tmp_path / "kb.db"
    store_two_studies(db)
    data = make_data(load_wine)
    return make_meta(data, prior="store", storage=db, **kwargs), data


class _PriorBuilt(Exception):
    """Stops a study once its prior is built (all these tests need)."""


@pytest.mark.parametrize("workers", [None, 1, 2, 64])
def test_the_prior_is_fitted_in_as_many_threads_as_workers_the_cores_allow(
    workers, monkeypatch
) -> None:
    import llp.knowledge
    from llp.executors._process import available_cores

    threads = []

    def recorded(*args, **kwargs):
        threads.append(kwargs["n_jobs"])
        raise _PriorBuilt

    monkeypatch.setattr(llp.knowledge, "build_prior", recorded)
    with pytest.raises(_PriorBuilt):
        make_meta(make_data(load_iris), n_workers=workers).run_meta_optimization(budget=10)
    assert threads == [None if workers is None else min(workers, available_cores())]


def test_cold_start_runs_brackets_within_its_budget_and_explains_every_decision() -> None:
    data = make_data(load_breast_cancer)  # hard enough that no answer is perfect early
    mp = make_meta(data)
    best = mp.run_meta_optimization(
        min_resource=0.25,
        max_resource=1.0,
        reduction_factor=2,
        measure_flatness=False,
        num_initial_configs=6,
        num_iterations=3,
        budget=30,
    )
    result = mp.result_
    assert SPACE.validate(best) == best and best == result.best_config
    assert result.rungs == (0.25, 0.5, 1.0)
    assert result.study.best_evaluation.resource == 1.0
    assert result.budget == 30 and result.total_cost <= 30 + 1e-9
    assert result.stop_reason is not None
    assert result.budget_saved == pytest.approx(30 - result.total_cost)
    brackets = {e.job.bracket for e in result.evaluations}
    assert len(brackets) >= 2  # the budget buys more than the first bracket
    assert all("(source: " in e.job.reason or e.job.reason.startswith("promoted")
               for e in result.evaluations)  # fmt: skip
    assert set(result.sources.values()) <= {"user", "random", "model", "local"}
    assert "user" in result.sources.values()
    assert result.prior.n_evaluations == 0 and not result.prior.predictor_fitted
    assert result.zero_shot_config is None and len(result.initial_configs) == 6
    assert not result.prior_scores and not result.surrogate_checks
    assert result.total_cost == pytest.approx(sum(e.cost for e in result.evaluations))
    for p in result.predictions:
        assert p.action in ("promote", "keep out", "propose")
        assert (p.source in SOURCES) if p.action == "propose" else np.isfinite(p.posterior)
        # A promotion is decided on a rung below the top, a proposal on nothing measured.
        assert (
            (p.decided_on is None) if p.action == "propose" else (p.decided_on in result.rungs[:-1])
        )
        if p.action == "promote":  # ...and the configuration was then trained a rung up
            up = result.rungs[result.rungs.index(p.decided_on) + 1]
            assert any(e.trial_id == p.trial_id and e.resource == up for e in result.evaluations)
    assert len(result.predictions_frame()) == len(result.predictions)
    assert all(-1.0 <= rho <= 1.0 for rho in result.promotion_spearman())
    # Promotions in exactly the order the next rung confirmed correlate 1, reversed -1.
    up = {e.trial_id: e.score for e in result.evaluations if e.resource == 0.5}
    assert len(set(up.values())) >= 3

    def promoted(sign: float) -> MetaProbingResult:
        records = [
            PredictionRecord(t, 99, "promote", {}, math.nan, math.nan, None, None,
                             posterior=sign * score, decided_on=0.25)
            for t, score in up.items()
        ]  # fmt: skip
        return replace(result, predictions=tuple(records))

    assert promoted(1.0).promotion_spearman() == [pytest.approx(1.0)]
    assert promoted(-1.0).promotion_spearman() == [pytest.approx(-1.0)]
    # Without a prior the answer is the best measured on the top rung.
    from llp.runner import select_best

    assert result.study.best_evaluation.trial_id == select_best(result.evaluations).trial_id


def test_a_prior_from_the_knowledge_base_guides_a_new_dataset(tmp_path) -> None:
    mp, _ = meta_with_prior(tmp_path)
    db = mp.storage
    mp.run_meta_optimization(
        0.5, 1.0, 2, measure_flatness=False, num_initial_configs=4, num_iterations=2
    )
    result = mp.result_
    assert result.prior.n_datasets == 2 and result.prior.n_evaluations == 12
    assert result.prior.predictor_fitted and result.prior.surrogate_fitted
    assert result.zero_shot_config is not None
    assert SPACE.validate(result.zero_shot_config) == result.zero_shot_config
    assert len(result.initial_configs) == 4
    assert result.initial_configs[0] == result.zero_shot_config
    assert "prior" in result.sources.values()
    assert len(result.surrogate_used) == len(result.surrogate_checks)
    # The study itself landed in the knowledge base, with its dataset.
    from llp.store import KnowledgeBase

    with KnowledgeBase.open(db) as kb:
        assert len(kb.list_datasets()) == 3
        assert len(kb.evaluations(study=result.study.study_name)) == len(result.evaluations)


def test_measure_flatness_feeds_landscape_features_to_the_meta_model() -> None:
    data = make_data(load_wine)
    mp = make_meta(data)
    mp.run_meta_optimization(
        0.5, 1.0, 2, measure_flatness=True, num_initial_configs=4, num_iterations=2
    )
    ok = [e for e in mp.result_.evaluations if e.status is EvaluationStatus.COMPLETE]
    assert ok and all(e.result.landscape for e in ok)
    assert mp.result_.study.probe_cost > 0


@pytest.mark.parametrize("device", DEVICES)
def test_meta_probing_end_to_end_on_the_device(device, tmp_path) -> None:
    # The shipped prior, landscape probes, a stored study and its answer, all on `device`.
    data = make_data(load_wine)
    mp = make_meta(data, device=device, prior="shipped", storage=tmp_path / "kb.sqlite")
    best = mp.run_meta_optimization(
        0.25, 1.0, 2, measure_flatness=True, num_initial_configs=4, num_iterations=3, budget=30
    )
    result = mp.result_
    assert result.evaluations
    assert all(e.status is EvaluationStatus.COMPLETE for e in result.evaluations), [
        e.result.failure_reason for e in result.evaluations
    ]
    answer = result.study.answer
    assert answer is not None and best == dict(answer.evaluation.config) == result.best_config
    assert result.prior.n_datasets > 0 and result.anchor_config is not None
    assert all(e.result.landscape for e in result.evaluations)
    assert result.study.probe_cost > 0
    # Landscape probes are paid from the budget, the first evaluation's included.
    assert result.study.total_cost <= 30 + 1e-9


def test_a_budget_that_cannot_pay_for_one_evaluations_probes_is_refused(tmp_path) -> None:
    # On wine (142 training examples) the probes of one evaluation may cost up to
    # 20 x 128 / 142 = 18 full-data epochs: more than a budget of 8 could pay.
    data = make_data(load_wine)
    mp = make_meta(data, storage=tmp_path / "kb.sqlite")
    with pytest.raises(
        ValueError, match=r"'budget' parameter .* landscape probes .*Got 8\.0 instead"
    ):
        mp.run_meta_optimization(
            0.25, 1.0, 2, measure_flatness=True, num_initial_configs=4, num_iterations=3, budget=8
        )
    # Without probes the same budget is fine.
    mp.run_meta_optimization(0.25, 1.0, 2, num_initial_configs=4, num_iterations=3, budget=8)
    assert mp.result_.study.total_cost <= 8 + 1e-9


def test_an_interrupted_meta_study_resumes(tmp_path) -> None:
    class Crash(Exception):
        pass

    def crash(event):
        if event.n_finished == 3:
            raise Crash

    db = tmp_path / "kb.db"
    data = make_data(load_wine)
    with pytest.raises(Crash):
        make_meta(data, storage=db).run_meta_optimization(
            0.5,
            1.0,
            2,
            measure_flatness=False,
            num_initial_configs=4,
            num_iterations=2,
            progress_callback=crash,
        )
    mp = make_meta(data, storage=db)
    mp.run_meta_optimization(
        0.5, 1.0, 2, measure_flatness=False, num_initial_configs=4, num_iterations=2
    )
    study = mp.result_.study
    assert study.n_reused == 3
    # The resumed study made its decisions again: each is stored once, in order, and
    # there is one stored answer after every evaluation, the last one the study's.
    from llp.store import KnowledgeBase

    with KnowledgeBase.open(db) as kb:
        decisions = kb.decisions(study.study_name)
        answers = kb.answers(study.study_name)
    assert [(d.sequence, d.action, d.trial_number) for d in decisions] == [
        (d.sequence, d.action, d.trial_id) for d in study.decisions
    ]
    assert len(answers) == len(study.evaluations)
    assert answers[-1].trial_number == study.best_evaluation.trial_id
    assert answers[-1].note == mp.result_.answer_note
    assert [a.trial_number for a in answers] == [a.trial_id for a in study.answers]


def test_same_seed_same_search() -> None:
    def run():
        mp = make_meta(make_data(load_wine))
        mp.run_meta_optimization(
            0.25, 1.0, 2, measure_flatness=False, num_initial_configs=5, num_iterations=3
        )
        return [(e.trial_id, e.resource, e.score) for e in mp.result_.evaluations]

    assert run() == run()


@pytest.mark.parametrize(
    ("kwargs", "call", "error", "match"),
    [
        ({"prior": "everything"}, {}, ValueError, "'prior' parameter of MetaProbing"),
        ({}, {"num_initial_configs": 0}, ValueError, "'num_initial_configs'.*>= 1"),
        ({}, {"portfolio_size": 0}, ValueError, "'portfolio_size'.*>= 1"),
        ({}, {"reduction_factor": 1}, ValueError, "'reduction_factor'.*>= 2"),
        ({}, {"num_iterations": 0}, ValueError, "'num_iterations'.*>= 1"),
        ({}, {"min_resource": 0.9, "max_resource": 0.5}, ValueError, "'min_resource'"),
        ({"max_epochs": 0}, {}, ValueError, "'max_epochs'"),
        ({}, {"budget": -1.0}, ValueError,
         r"'budget' parameter of MetaProbing must be a finite float"),
        ({}, {"budget": 0.1}, ValueError,
         r"'budget' parameter of MetaProbing must be at least the cost of one evaluation on "
         r"the smallest rung \(0\.25 full-data epochs: 0\.125 of the data x 2 epochs\)"),
    ],
)  # fmt: skip
def test_input_errors(kwargs, call, error, match) -> None:
    data = make_data(load_wine)
    with pytest.raises(error, match=match):
        make_meta(data, **kwargs).run_meta_optimization(**call)


def test_fresh_data_is_not_in_its_own_prior(tmp_path) -> None:
    db = tmp_path / "kb.db"
    data = make_data(load_wine)
    make_meta(data, storage=db).run_meta_optimization(
        0.5, 1.0, 2, measure_flatness=False, num_initial_configs=3, num_iterations=2
    )
    again = make_meta(data, storage=db, prior="store", study_name="second")
    again.run_meta_optimization(
        0.5, 1.0, 2, measure_flatness=False, num_initial_configs=3, num_iterations=2
    )
    assert again.result_.prior.n_evaluations == 0
    np.testing.assert_equal(again.result_.prior.n_datasets, 0)


def test_the_pick_runs_first_and_is_judged_like_every_other_configuration(tmp_path) -> None:
    from llp.search import select_answer

    mp, _ = meta_with_prior(tmp_path)
    db = mp.storage
    mp.run_meta_optimization(
        0.25, 1.0, 2, measure_flatness=False, num_initial_configs=6, num_iterations=3, budget=40
    )
    result = mp.result_
    pick = result.anchor_config
    assert pick is not None and pick == result.zero_shot_config == result.initial_configs[0]
    first = result.evaluations[0]
    assert first.config == pick and first.job.reason.startswith("the meta-model's pick")
    assert first.resource == 0.25 and result.sources[first.trial_id] == "prior"
    # A quarter of the first bracket (rounded up) comes from the prior, the pick first.
    first_bracket = [e for e in result.evaluations if e.job.bracket == 0 and e.job.rung == 0]
    assert sum(result.sources[e.trial_id] == "prior" for e in first_bracket) == 2
    # Every trial has a prior score and the answer is the posterior rule's, which the
    # stored reasons reproduce.
    assert set(result.prior_scores) == {e.trial_id for e in result.evaluations}
    answer = select_answer(
        result.evaluations,
        prior_scores=result.prior_scores,
        n_val=mp._describe().n_val,
        objective="val_accuracy",
    )
    assert answer is not None and answer.evaluation is result.study.best_evaluation
    # Anytime answers: one per evaluation, costs rising to the total, ending on the answer.
    costs = [c for c, _ in result.incumbents]
    assert len(costs) == len(result.evaluations) and costs == sorted(costs)
    assert costs[-1] == pytest.approx(result.total_cost)
    assert result.incumbents[-1][1] == result.study.best_evaluation.trial_id
    assert result.incumbents[0][1] == first.trial_id
    assert result.answer_note and "is the answer" in result.answer_note
    # The report of the stored study names the same answer.
    from llp.report._collect import best_evaluation, load_study
    from llp.store import KnowledgeBase

    with KnowledgeBase.open(db) as kb:
        stored = best_evaluation(load_study(kb, result.study.study_name))
    assert stored is not None
    assert int(stored["trial_number"]) == result.study.best_evaluation.trial_id


@pytest.mark.parametrize(
    ("pick_top", "other_top", "answer", "note"),
    [
        (0.90, 0.80, 0, "the meta-model's pick (trial 0) is the answer: measured 0.9000 on "
                        "36 validation examples"),
        (0.90, 0.92, 0, "the meta-model's pick (trial 0) is the answer: measured 0.9000 on "
                        "36 validation examples (posterior"),
        (0.50, 0.95, 1, "trial 1 is the answer: measured 0.9500 on 36 validation examples"),
        (None, 0.95, 1, "trial 1 is the answer: measured 0.9500"),
    ],
)  # fmt: skip
def test_the_answer_says_why_it_is_the_answer(
    pick_top: float | None, other_top: float, answer: int, note: str
) -> None:
    from llp.runner import Runner
    from llp.search import Job, Scheduler, answer_note, select_answer
    from tests.conftest import fake_result

    configs = SPACE.sample(2, seed=0)
    scores = {(0, 0.5): 0.8, (1, 0.5): 0.7, (0, 1.0): pick_top, (1, 1.0): other_top}

    class TwoRungs(Scheduler):
        def __init__(self) -> None:
            self.jobs = [
                Job(j, t, configs[t], Fidelity(f, 2), 0, r, "")
                for j, (t, f, r) in enumerate([(0, 0.5, 0), (1, 0.5, 0), (0, 1.0, 1), (1, 1.0, 1)])
            ]

        def ask(self):
            return self.jobs.pop(0) if self.jobs else None

        def tell(self, job, result) -> None:
            pass

        def is_finished(self) -> bool:
            return not self.jobs

    def evaluate(job: Job):
        score = scores[(job.trial_id, job.fidelity.fraction)]
        return fake_result(job, score, failed=score is None)

    study = Runner(TwoRungs(), evaluate, show_progress=False).run()
    prior = {0: 0.9, 1: 0.5}  # the prior prefers the pick
    final = select_answer(study.evaluations, prior_scores=prior, n_val=36, objective="val_accuracy")
    assert final is not None and final.evaluation.trial_id == answer
    text = answer_note(final, study.evaluations, 0, 36)
    assert text.startswith(note)
    if answer == 0 and other_top > pick_top:
        assert "trial 1 measured higher (0.9200)" in text
    if answer == 1 and pick_top is not None:
        assert text.endswith("the meta-model's pick (trial 0) measured 0.5000 on the same data")
    if pick_top is None:
        assert text.endswith("the meta-model's pick (trial 0) was not promoted to that data")


def test_a_study_of_another_llp_version_is_not_resumed_under_the_default_name(
    tmp_path, monkeypatch
) -> None:
    import llp.meta_probing

    db = tmp_path / "kb.db"
    data = make_data(load_wine)
    args = (0.5, 1.0, 2)
    kwargs = {"measure_flatness": False, "num_initial_configs": 2, "num_iterations": 2}
    first = make_meta(data, storage=db)
    first.run_meta_optimization(*args, **kwargs)
    same = make_meta(data, storage=db)
    same.run_meta_optimization(*args, **kwargs)
    assert same.result_.study.n_reused == len(same.result_.evaluations)
    monkeypatch.setattr(llp.meta_probing, "__version__", "999.0")
    upgraded = make_meta(data, storage=db)
    upgraded.run_meta_optimization(*args, **kwargs)
    assert upgraded.result_.study.n_reused == 0
    assert upgraded.result_.study.study_name != first.result_.study.study_name


def test_the_validation_size_is_known_for_a_users_own_loaders() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from llp.runner import describe_dataset

    data = make_data(load_wine)
    assert describe_dataset(data).n_val == data.n_val
    train_loader, val_loader = data(1.0)
    X_val = torch.cat([x for x, _ in val_loader])
    y_val = torch.cat([y for _, y in val_loader])
    batches = [(X_val[i : i + 8], y_val[i : i + 8]) for i in range(0, len(y_val), 8)]

    def with_datasets(fraction):
        return train_loader, DataLoader(TensorDataset(X_val, y_val), batch_size=8)

    def plain_batches(fraction):
        return train_loader, batches  # no .dataset: the examples are counted

    assert describe_dataset(with_datasets).n_val == data.n_val
    assert describe_dataset(plain_batches).n_val == data.n_val


def test_the_result_says_which_earlier_studies_predict_this_one_without_being_steered(
    tmp_path, monkeypatch
) -> None:
    from llp.meta._weights import THIS_STUDY
    from llp.search._meta_guided import MetaGuidedScheduler
    from llp.store import KnowledgeBase

    def run(name: str) -> MetaProbing:
        mp = make_meta(data, prior="store", storage=db, study_name=name)
        mp.run_meta_optimization(
            0.25, 1.0, 2, measure_flatness=False, num_initial_configs=6, num_iterations=3,
            budget=40,
        )  # fmt: skip
        return mp

    db = tmp_path / "kb.db"
    store_two_studies(db)
    data = make_data(load_wine)
    with KnowledgeBase.open(db) as kb:
        earlier = {s.name for s in kb.list_studies()}
    weighed = run("weighed").result_
    weights = weighed.prior_weights
    assert weights is not None and weights.n_pairs > 0
    assert set(weights.weights) == earlier | {THIS_STUDY}
    assert sum(weights.weights.values()) == pytest.approx(1.0)
    # The weights inform; they do not steer: the same search without weighing.
    monkeypatch.setattr(MetaGuidedScheduler, "_weigh_earlier_studies", lambda self: None)
    plain = run("plain").result_
    assert plain.prior_weights is None
    assert [(e.trial_id, e.config, e.resource) for e in plain.evaluations] == [
        (e.trial_id, e.config, e.resource) for e in weighed.evaluations
    ]
