"""SMAC3 multi-fidelity (random-forest BO + Hyperband) as a peer for ``compare.py``.

``method_smac`` has the contract of ``compare.py``'s methods: it searches
``llp.knowledge.DEFAULT_SPACE`` on ``task`` with at most ``budget`` full-data-epoch
equivalents and returns the trajectory ``[(cumulative cost, incumbent config), ...]``.

SMAC's :class:`~smac.MultiFidelityFacade` (random forest surrogate, Hyperband
intensifier) proposes the trials through its ask/tell interface, so the loop, the
training and the cost accounting stay ours: every trial is trained with llp's
:class:`~llp.training.Trainer` exactly as in ``method_optuna`` (a fresh training at the
trial's data fraction; a configuration keeps its seed across fractions), costs are the
results' ``cost`` and the search stops once ``budget`` is spent. SMAC's budgets are the
data fractions of ``compare.RUNGS`` (1/8 -> 1, eta 2).

Reproducibility: the same ``seed`` gives the same run only under the same
``PYTHONHASHSEED`` (SMAC's local search orders its start points through a ``set`` of
configurations); the random first bracket is the same regardless.

Needs ``smac>=2.4`` (the ``bench`` extra); earlier 2.x releases require the C++ ``pyrfr``.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _trajectory import rung_incumbents
from torch import nn

from llp.knowledge import DEFAULT_SPACE, make_optimizer
from llp.space import Categorical, canonical_config_json
from llp.training import EvaluationStatus, Fidelity, Trainer

RUNGS = (0.125, 0.25, 0.5, 1.0)  # the data fractions of compare.RUNGS
ETA = 2
CRASH_COST = 1.0  # SMAC minimises 1 - validation accuracy; a failure counts as accuracy 0


def _to_config(values: Any) -> dict[str, Any]:
    """A SMAC ``Configuration`` as a plain llp config (categoricals are choice indices)."""
    raw = dict(values)
    out: dict[str, Any] = {}
    for hp in DEFAULT_SPACE.hyperparameters:
        if hp.name not in raw:
            continue
        value = raw[hp.name]
        value = value.item() if hasattr(value, "item") else value
        out[hp.name] = hp.choices[int(value)] if isinstance(hp, Categorical) else value
    return DEFAULT_SPACE.validate(out)


def _rung(budget: float) -> int:
    """The index in ``RUNGS`` of a SMAC budget (SMAC computes them in floating point)."""
    index = min(range(len(RUNGS)), key=lambda i: abs(RUNGS[i] - budget))
    if abs(RUNGS[index] - budget) > 1e-6:
        raise RuntimeError(f"SMAC asked for budget {budget!r}, which is not one of {RUNGS}.")
    return index


def method_smac(task, budget, epochs, seed, **_):
    logging.getLogger("smac").setLevel(logging.WARNING)
    from smac import MultiFidelityFacade, Scenario
    from smac.main.exceptions import ConfigurationSpaceExhaustedException
    from smac.runhistory.dataclasses import TrialValue
    from smac.runhistory.enumerations import StatusType

    trainer = Trainer(
        task.model_fn, make_optimizer, nn.CrossEntropyLoss(), task.data, device="cpu", seed=seed
    )
    workdir = Path(tempfile.mkdtemp(prefix="llp-smac-"))
    try:
        scenario = Scenario(
            # A copy: SMAC seeds (mutates) the space it is given.
            copy.deepcopy(DEFAULT_SPACE.configspace),
            name="smac",
            output_directory=workdir,
            deterministic=True,
            crash_cost=CRASH_COST,
            n_trials=10**9,  # not a stop: ask/tell never checks it, the budget stops us
            min_budget=RUNGS[0],
            max_budget=RUNGS[-1],
            seed=int(seed),
        )
        smac = MultiFidelityFacade(
            scenario,
            target_function=None,  # ask/tell only
            intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=ETA),
            # The random initial design fills exactly the first bracket's first rung; every
            # later configuration comes from the random forest (SMAC still interleaves 20 %
            # random ones). SMAC's default (10 per hyperparameter: 50) would leave every
            # configuration of a run of this size random, and a design smaller than the
            # first rung gets it topped up with repeats: SMAC's no-data fallback samples
            # the space with the seed the initial design already used.
            initial_design=MultiFidelityFacade.get_initial_design(
                scenario, n_configs=ETA ** (len(RUNGS) - 1), max_ratio=1.0
            ),
            # False: leave the root logger alone (an int makes SMAC re-configure it).
            logging_level=False,
            overwrite=True,
        )
        spent = 0.0
        history: list[tuple[float, dict[str, Any], float, int]] = []  # cost, config, score, rung
        trial_ids: dict[str, int] = {}  # one seed per configuration, as in method_optuna
        while spent < budget:
            try:
                info = smac.ask()
            except (StopIteration, ConfigurationSpaceExhaustedException):
                break  # SMAC found no new configuration to propose
            config = _to_config(info.config)
            rung = _rung(float(info.budget))
            key = canonical_config_json(config)
            trial_id = trial_ids.setdefault(key, len(trial_ids))
            started = time.time()
            result = trainer.evaluate(config, Fidelity(RUNGS[rung], epochs), trial_id=trial_id)
            spent += result.cost
            if spent > budget + 1e-9:
                break
            ok = result.status is EvaluationStatus.COMPLETE
            if ok:
                history.append((spent, config, float(result.score), rung))
            value = TrialValue(
                cost=1.0 - float(result.score) if ok else CRASH_COST,
                time=result.seconds,
                status=StatusType.SUCCESS if ok else StatusType.CRASHED,
                starttime=started,
                endtime=started + result.seconds,
            )
            smac.tell(info, value, save=False)  # nothing on disk but SMAC's own metadata
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # The incumbent: the best score at the highest rung reached so far (as method_optuna).
    return rung_incumbents(history)
