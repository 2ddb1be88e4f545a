"""Portfolios of defaults, leave-one-group-out over the shipped knowledge.

A study that may train ``k`` configurations before it has learned anything starts from a
*portfolio*: the zero-shot pick and ``k - 1`` more. Two ways to choose them from the
corpus (after holding out the dataset's group):

    mean rank       the ``k`` configurations with the best mean percentile rank
                    (``MetaModelTrainer.ranked_portfolio``, what MetaProbing starts from:
                    good on average, and alike)
    greedy          the best mean rank first (the same zero-shot pick), then one at a time
                    the configuration that most raises the training studies' mean of the
                    best percentile rank any member reached
                    (``ranked_portfolio(..., greedy=True)``; after the greedy portfolios of
                    algorithm selection, e.g. auto-sklearn 2.0)

Scores per held-out dataset: the regret of the portfolio's best member among its first
``k`` (the most a search that tells its members apart could get from it; ``k = 1`` is
the zero-shot pick itself), normalised ``(best - acc) / (best - median)`` and clipped at 3,
over the datasets where best and median differ by more than 0.01; also the share of
datasets on which the portfolio's best member beats the pick by more than 0.01 accuracy.

``--corpus PATH`` reads another corpus file, e.g. corpus v1
(``benchmarks/results/corpus-v1.jsonl.gz``, shipped until 2026-12-06). For corpus v2
(the shipped one since: successive-halving studies,
full-data accuracies for the survivors only) the regret is the rank regret of
``zero_shot_logo.py`` (``1 - percentile rank``) over the same informative datasets, and
"beats the pick" compares ranks.

Run: ``python benchmarks/portfolio_logo.py`` (seconds). Writes
``benchmarks/results/portfolio_logo.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from zero_shot_logo import design_table  # noqa: E402

from llp.knowledge import DEFAULT_SPACE, load_shipped_experiences, read_corpus  # noqa: E402
from llp.meta import MetaModelTrainer  # noqa: E402
from llp.space import canonical_config_json  # noqa: E402

RESULTS = HERE / "results"
K_MAX = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--corpus", type=Path, default=None, help="default: the shipped one")
    parser.add_argument("--out", type=Path, default=RESULTS / "portfolio_logo.json")
    args = parser.parse_args()
    started = time.perf_counter()
    exps = (
        load_shipped_experiences()
        if args.corpus is None
        else list(read_corpus(args.corpus, cache=False).experiences)
    )
    halving = any(e.halving for e in exps)
    design = design_table(exps)
    studies, keys, acc = design.studies, design.keys, design.acc
    groups = np.array([design.info[s][0] for s in studies])
    families = np.array([design.info[s][1] for s in studies])
    if halving:  # ranks stand in for accuracies (see the module docstring)
        filled = design.rank
        informative = np.nanmax(acc, axis=1) - np.nanmin(acc, axis=1) > 0.01
        regret = 1.0 - filled
    else:
        filled = np.nan_to_num(acc, nan=0.0)
        best, median = filled.max(1), np.median(filled, axis=1)
        informative = (best - median) > 0.01
        regret = np.minimum(
            (best[:, None] - filled) / np.maximum(best - median, 1e-9)[:, None], 3.0
        )
    column = {k: j for j, k in enumerate(keys)}
    curves: dict[str, list[list[float]]] = {"mean rank": [], "greedy": []}
    gains: dict[str, list[float]] = {"mean rank": [], "greedy": []}
    for group in sorted(set(groups)):
        trainer = MetaModelTrainer(DEFAULT_SPACE, use_landscape_features=False)
        trainer.add(e for e in exps if e.group != group)
        orders = {
            "mean rank": trainer.ranked_portfolio(None, K_MAX, same_family=False, greedy=False),
            "greedy": trainer.ranked_portfolio(None, K_MAX, same_family=False, greedy=True),
        }
        for label, ranked in orders.items():
            members = [column[canonical_config_json(c)] for c, _ in ranked]
            for i in np.flatnonzero((groups == group) & informative):
                best_of = np.minimum.accumulate(regret[i, members])
                curves[label].append(best_of.tolist())
                gains[label].append(float(filled[i, members].max() - filled[i, members[0]]))
    report: dict = {
        "command": "python benchmarks/portfolio_logo.py"
        + (f" --corpus {args.corpus}" if args.corpus is not None else ""),
        "regret": "rank regret (1 - percentile rank)" if halving else "normalised, clipped at 3",
        "n_datasets": len(studies),
        "n_informative": int(informative.sum()),
        "n_groups": len(set(groups)),
        "families": sorted(set(families)),
        "k": list(range(1, K_MAX + 1)),
        "rules": {},
    }
    for label, rows in curves.items():
        arr = np.array(rows)
        report["rules"][label] = {
            "mean_best_of_k_regret": arr.mean(0).tolist(),
            "share_beating_the_pick_by_0.01": float(np.mean(np.array(gains[label]) > 0.01)),
        }
    diff = np.array(curves["greedy"]) - np.array(curves["mean rank"])
    report["greedy_minus_mean_rank"] = diff.mean(0).tolist()
    report["wall_seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("| portfolio | " + " | ".join(f"k={k}" for k in report["k"]) + " |")
    print("|---|" + "---:|" * K_MAX)
    for label, row in report["rules"].items():
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in row["mean_best_of_k_regret"]) + " |")
    print(
        f"\n{report['n_informative']} informative held-out datasets of {len(studies)}; "
        f"wall time {report['wall_seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
