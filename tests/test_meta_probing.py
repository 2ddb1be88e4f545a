from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from torch import nn

from llp.data import FidelityData
from llp.meta_probing import MetaProbing
from llp.space import Categorical, Float, Int, SearchSpace
from llp.training import EvaluationStatus, Fidelity
from llp.two_tier_probing import TwoTierProbing

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


def test_cold_start_runs_the_loop_and_explains_every_decision() -> None:
    data = make_data(load_wine)
    mp = make_meta(data)
    best = mp.run_meta_optimization(
        min_resource=0.25,
        max_resource=1.0,
        reduction_factor=2,
        measure_flatness=False,
        num_initial_configs=6,
        num_iterations=3,
    )
    result = mp.result_
    assert SPACE.validate(best) == best and best == result.best_config
    assert result.rungs == (0.25, 0.5, 1.0)
    assert result.study.best_evaluation.resource == 1.0
    rungs = [e.job.rung for e in result.evaluations]
    assert rungs.count(0) >= 6 and 2 in rungs
    reasons = {e.job.reason.split(" ")[0] for e in result.evaluations}
    assert {"initial", "promoted"} <= reasons
    assert result.prior.n_evaluations == 0 and not result.prior.predictor_fitted
    assert result.zero_shot_config is None and len(result.initial_configs) == 6
    assert result.total_cost == pytest.approx(sum(e.cost for e in result.evaluations))
    for p in result.predictions:
        assert 0.0 <= p.predicted <= 1.0 and p.action in ("promote", "keep out", "propose")
    assert len(result.predictions_frame()) == len(result.predictions)


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
    assert len(result.initial_configs) == 4  # 2 given + 2 suggested
    assert all(u for u in result.surrogate_used)
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
    assert mp.result_.study.n_reused == 3


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
    ],
)
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


def test_a_portfolio_of_one_races_the_pick_against_the_search_alone(tmp_path) -> None:
    mp, _ = meta_with_prior(tmp_path)
    mp.run_meta_optimization(
        0.5, 1.0, 2, measure_flatness=False, num_initial_configs=4, num_iterations=2,
        portfolio_size=1,
    )  # fmt: skip
    assert mp.result_.anchor_config is not None
    assert not [e for e in mp.result_.evaluations if e.job.reason.startswith("runner-up")]


def test_the_meta_models_pick_runs_first_reaches_every_rung_and_anchors_the_answer(
    tmp_path,
) -> None:
    from llp.runner import noise_margin

    mp, data = meta_with_prior(tmp_path)
    db = mp.storage
    mp.run_meta_optimization(
        0.25, 1.0, 2, measure_flatness=False, num_initial_configs=6, num_iterations=3
    )
    result = mp.result_
    anchor = result.anchor_config
    assert anchor is not None and anchor == result.zero_shot_config
    assert result.initial_configs[0] == anchor
    first = result.evaluations[0]
    assert first.config == anchor and first.job.reason.startswith("the meta-model's pick")
    anchor_trial = first.trial_id
    # Carried to every rung, whatever the surrogate thought of it.
    rungs = {e.resource for e in result.evaluations if e.trial_id == anchor_trial}
    assert rungs == {0.25, 0.5, 1.0}
    # Besides the anchor, challengers reach the top rung too.
    top = [e for e in result.evaluations if e.resource == 1.0]
    assert len({e.trial_id for e in top}) >= 2
    # The prior's two runners-up go straight there, in the last iteration, and only there.
    runners = {e.trial_id for e in result.evaluations if e.job.reason.startswith("runner-up")}
    assert len(runners) == 2
    for e in result.evaluations:
        if e.trial_id in runners:
            assert e.resource == 1.0 and e.config not in result.initial_configs
    assert {p.trial_id for p in result.predictions if p.action == "runner-up"} == runners
    # Anytime answers: one per evaluation, costs rising to the total, ending on the answer.
    costs = [c for c, _ in result.incumbents]
    assert len(costs) == len(result.evaluations) and costs == sorted(costs)
    assert costs[-1] == pytest.approx(result.total_cost)
    assert result.incumbents[-1][1] == result.study.best_evaluation.trial_id
    assert result.incumbents[0][1] == anchor_trial
    # A challenger replaced the anchor only by beating it by more than noise.
    at_top = {e.trial_id: e.score for e in top if e.status is EvaluationStatus.COMPLETE}
    chosen = result.study.best_evaluation
    if chosen.trial_id != anchor_trial:
        margin = noise_margin(at_top[anchor_trial], data.n_val, "val_accuracy")
        assert chosen.score > at_top[anchor_trial] + margin
        assert result.answer_note.startswith(f"trial {chosen.trial_id} (")
        assert "beat the meta-model's pick" in result.answer_note
    else:
        assert result.best_config == anchor
        assert "meta-model's pick" in result.answer_note
        if max(at_top.values()) > at_top[anchor_trial]:
            assert result.answer_note.startswith("kept the meta-model's pick")
    # The report of the stored study names the same answer.
    from llp.report._collect import best_evaluation, load_study
    from llp.store import KnowledgeBase

    with KnowledgeBase.open(db) as kb:
        stored = best_evaluation(load_study(kb, result.study.study_name))
    assert stored is not None and int(stored["trial_number"]) == chosen.trial_id


@pytest.mark.parametrize(
    ("pick_top", "other_top", "note"),
    [
        (0.90, 0.80, "the meta-model's pick (trial 0) measured best"),
        (0.90, 0.91, "kept the meta-model's pick (trial 0, 0.9000): the best measured, "
                     "trial 1 at 0.9100, is within validation noise"),
        (0.50, 0.95, "trial 1 (0.9500) beat the meta-model's pick (trial 0, 0.5000) by "
                     "more than validation noise (margin"),
        (None, 0.95, "trial 1 (0.9500) measured best; the meta-model's pick (trial 0) has "
                     "no result on that data"),
    ],
)  # fmt: skip
def test_the_answer_says_why_the_pick_was_kept_or_replaced(
    pick_top: float | None, other_top: float, note: str
) -> None:
    from llp.runner import Runner
    from llp.search import Job, Scheduler
    from tests.conftest import fake_result

    data = make_data(load_wine)  # 36 validation examples
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
    mp = make_meta(data)
    judged, incumbents, answer = mp._judge(study, 0, (1.0, 2))
    assert answer.startswith(note)
    assert incumbents[0][1] == 0  # the pick answers from its first evaluation
    assert judged.best_evaluation.trial_id == (0 if answer.startswith(("the", "kept")) else 1)


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
