"""Where a wrong prior's cost comes from on the large tasks: each study run again, read
evaluation by evaluation.

``compare.py`` keeps each MetaProbing run's anytime answer, not its evaluations. This
runs ``mp-v2-misled`` (the shipped prior made wrong on purpose, ``compare.misleading``)
again with exactly ``compare.py``'s settings on its large tasks (10,000 rows) at the full
budget, checks that each run ends on the answer ``compare.py`` stored for it, and reports
per run:

- the pick's place among the first bracket's configurations on the lowest rung (1/8 of
  the data), by validation accuracy (0 = the best): whether the study's own measurements
  favoured the wrong pick, or only the prior did;
- every evaluation on all of the data: trial, source, validation and test accuracy
  (test from ``compare.py``'s cache of final trainings, trained again where missing);
- whether the answer's validation accuracy is the best on all of the data, and the
  sources of the study's configurations.

Run: ``python benchmarks/misled_large.py`` (about 4 minutes on 2 cores; ``--seeds``,
``--tasks``). Writes ``benchmarks/results/misled_large.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402  (benchmarks/compare.py: tasks, settings, the misled prior)

import llp.knowledge  # noqa: E402
from llp.meta_probing import MetaProbing  # noqa: E402

BUDGET = 80.0


def run(task_name: str, seed: int) -> dict:
    task = compare.make_task(task_name, seed=0)  # compare.py splits every task with seed 0
    final = compare.FinalTrainer(task, compare.EPOCHS)
    cache = compare.RUNS / task_name.replace("@", "_at_") / "final_test.json"
    if cache.exists():
        final.cache.update(json.loads(cache.read_text()))
    mp = MetaProbing(
        compare.DEFAULT_SPACE.sample(1, seed=seed),
        task.model_fn,
        task.data,
        nn.CrossEntropyLoss(),
        compare.make_optimizer,
        space=compare.DEFAULT_SPACE,
        model_family=task.family,
        seed=seed,
        max_epochs=compare.EPOCHS,
        exclude_groups=(task.group,),
        show_progress=False,
        prior="shipped",
    )
    shipped = llp.knowledge.load_shipped_experiences
    llp.knowledge.load_shipped_experiences = lambda **kw: compare.misleading(shipped(**kw))
    try:
        mp.run_meta_optimization(
            min_resource=compare.RUNGS[0],
            max_resource=1.0,
            reduction_factor=2,
            measure_flatness=False,
            num_initial_configs=8,
            num_iterations=len(compare.RUNGS),
            budget=BUDGET,
        )
    finally:
        llp.knowledge.load_shipped_experiences = shipped
    result = mp.result_
    evaluations = list(result.evaluations)
    answer = result.study.best_evaluation
    stored = json.loads(compare.run_path(task_name, "mp-v2-misled", BUDGET, seed).read_text())
    first = [
        e for e in evaluations if e.job.bracket == 0 and e.fidelity.fraction == compare.RUNGS[0]
    ]
    order = sorted(first, key=lambda e: (-(e.result.score or 0.0), e.trial_id))
    top = [e for e in evaluations if e.fidelity.fraction == 1.0]
    return {
        "task": task_name,
        "seed": seed,
        "same_answer_as_compare": answer.trial_id == stored["info"]["answer_trial"],
        "pick_place_on_lowest_rung": [e.trial_id for e in order].index(0),
        "first_bracket_size": len(first),
        "answer": {"trial": answer.trial_id, "source": result.sources.get(answer.trial_id)},
        "answer_has_best_validation_on_all_data": (answer.result.score or 0.0)
        >= max(e.result.score or 0.0 for e in top),
        "on_all_data": [
            {
                "trial": e.trial_id,
                "source": result.sources.get(e.trial_id),
                "validation": e.result.score,
                "test": final.test_accuracy(dict(e.config)),
            }
            for e in top
        ],
        "pick_test": final.test_accuracy(dict(evaluations[0].config)),
        "best_test_of_task": max(final.cache.values()),
        "sources": dict(Counter(result.sources.get(e.trial_id) for e in evaluations)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=compare.LARGE_TASKS)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    runs = []
    for task_name in args.tasks:
        for seed in range(args.seeds):
            row = run(task_name, seed)
            runs.append(row)
            tops = ", ".join(
                f"t{r['trial']} {r['source']} val {r['validation']:.4f} test {r['test']:.4f}"
                for r in row["on_all_data"]
            )
            print(
                f"{task_name:>20} seed {seed}: pick {row['pick_place_on_lowest_rung']} of "
                f"{row['first_bracket_size']} on 1/8; answer t{row['answer']['trial']} "
                f"({row['answer']['source']}); on all data: {tops}",
                flush=True,
            )
    summary = {
        "runs": len(runs),
        "same_answer_as_compare": sum(r["same_answer_as_compare"] for r in runs),
        "pick_best_on_lowest_rung": sum(r["pick_place_on_lowest_rung"] == 0 for r in runs),
        "pick_in_top_two_on_lowest_rung": sum(r["pick_place_on_lowest_rung"] <= 1 for r in runs),
        "answer_is_the_pick": sum(r["answer"]["trial"] == 0 for r in runs),
        "answer_has_best_validation_on_all_data": sum(
            r["answer_has_best_validation_on_all_data"] for r in runs
        ),
    }
    out = {
        "command": "python benchmarks/misled_large.py " + " ".join(sys.argv[1:]),
        "budget": BUDGET,
        "wall_seconds": time.perf_counter() - started,
        "summary": summary,
        "runs": runs,
    }
    (compare.RESULTS / "misled_large.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
