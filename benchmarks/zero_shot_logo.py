"""Zero-shot choice rules, leave-one-group-out over the shipped knowledge.

Every dataset of the shipped corpus evaluated the same design of configurations to the
full training pool, so how well a rule that picks one configuration *without training*
would have done on a dataset can be read off the corpus itself: hold out the dataset's
group, let the rule choose from what remains, look up the chosen configuration's
full-data validation accuracy on the held-out dataset.

Rules
    best-default (all)      the configuration with the best mean percentile rank over all
                            remaining studies (llp's zero-shot pick,
                            ``MetaModelTrainer.zero_shot``)
    best-default (family)   the same over the studies of the same model family only
    surrogate               the candidate the surrogate (random forest over dataset
                            meta-features + configuration) predicts best for this dataset
    surrogate (no meta-features)
                            the same surrogate without dataset meta-features
    k nearest datasets      best mean rank over the k datasets closest in standardised
                            meta-feature space
    oracle                  the best design configuration on the held-out dataset

A replay of the search on the same tables: successive halving over the 8 configurations
best on average (the first carried to every rung, as MetaProbing carries its pick) with
challengers promoted by raw score or by the surrogate's predicted final rank.

Scores per held-out dataset: the chosen configuration's percentile rank among the
design (1 = best) and its normalised regret ``(best - acc) / (best - median)`` clipped at
3, over datasets where best and median differ by more than 0.01 (the others cannot tell
configurations apart). Writes ``benchmarks/results/zero_shot_logo.json``.

``--corpus PATH`` reads another corpus file, e.g. corpus v1
(``benchmarks/results/corpus-v1.jsonl.gz``, shipped until 2026-12-06, where every
configuration reached all of the data). The studies of corpus v2 (shipped since) follow
only the better part of
the design to all of the data, so a configuration's full-data accuracy is known only for
the survivors: there the percentile rank is the study's successive-halving order
(``MetaModelTrainer.final_ranks``: how far a configuration got, then its mean score over
the seeds where it stopped), the regret is ``rank regret`` (``1 - rank``: 0 = the best
configuration, 0.5 = the median one), over the datasets where the configurations that
reached all of the data differ by more than 0.01 in accuracy, and the replay is not run
(it needs every configuration at every fraction).

Run: ``python benchmarks/zero_shot_logo.py`` (one meta-model fit per group and variant:
about 10 minutes on 2 cores for corpus v1, 20 for the shipped corpus v2 with ``--jobs 2``,
the threads each fit builds its forests in; ``--no-surrogate`` skips those rules and
takes seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llp.features import DatasetFeatureExtractor
from llp.knowledge import DEFAULT_SPACE, load_shipped_experiences, read_corpus
from llp.meta import MetaModelTrainer
from llp.meta._trainer import _quantiles
from llp.space import canonical_config_json
from llp.training import EvaluationStatus

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=100, help="trees per surrogate")
    parser.add_argument("--corpus", type=Path, default=None, help="default: the shipped one")
    parser.add_argument(
        "--no-surrogate", action="store_true", help="skip the rules that fit a surrogate"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "zero_shot_logo.json")
    parser.add_argument("--jobs", type=int, default=None, help="threads per surrogate fit")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    started = time.perf_counter()
    exps = (
        load_shipped_experiences()
        if args.corpus is None
        else list(read_corpus(args.corpus, cache=False).experiences)
    )
    halving = any(e.halving for e in exps)
    design = design_table(exps)
    studies, keys, acc, rank = design.studies, design.keys, design.acc, design.rank
    info, configs = design.info, design.configs
    groups = np.array([info[s][0] for s in studies])
    families = np.array([info[s][1] for s in studies])
    features = np.vstack([DatasetFeatureExtractor.to_vector(info[s][2]) for s in studies])
    z = np.nan_to_num((features - features.mean(0)) / (features.std(0) + 1e-9))

    picks: dict[str, list[int]] = defaultdict(list)
    for i in range(len(studies)):
        train = groups != groups[i]
        picks["best-default (all)"].append(int(np.argmax(rank[train].mean(0))))
        same = train & (families == families[i])
        pool = same if same.sum() >= 2 else train
        picks["best-default (family)"].append(int(np.argmax(rank[pool].mean(0))))
        idx = np.flatnonzero(train)
        dist = np.sqrt(((z[idx] - z[i]) ** 2).sum(1))
        for k in (5, 10, 20):
            near = idx[np.argsort(dist, kind="stable")[:k]]
            picks[f"{k} nearest datasets"].append(int(np.argmax(rank[near].mean(0))))
        picks["oracle"].append(int(np.nanargmax(np.nan_to_num(acc[i], nan=-1.0))))
    # Every evaluation of the corpus by (study, fraction, configuration), for the replay.
    by_key = {
        (e.study, e.result.fidelity.fraction, canonical_config_json(e.result.config)): e
        for e in exps
    }
    fractions = sorted({f for _, f, _ in by_key})
    promoted: dict[str, dict[int, int]] = defaultdict(dict)
    variants = (("surrogate", True), ("surrogate (no meta-features)", False))
    for label, use_features in variants if not args.no_surrogate else ():
        chosen = {}
        for done, group in enumerate(sorted(set(groups))):
            if done % 10 == 0:
                print(f"{label}: group {done + 1} of {len(set(groups))}", flush=True)
            trainer = MetaModelTrainer(
                DEFAULT_SPACE,
                n_estimators=args.trees,
                random_state=0,
                use_dataset_features=use_features,
                use_landscape_features=False,
                n_jobs=args.jobs,
            )
            trainer.add(e for e in exps if e.group != group).fit()
            for i in np.flatnonzero(groups == group):
                _, family, meta = info[studies[i]]
                rows = np.vstack([trainer.surrogate_row(meta, family, configs[k]) for k in keys])
                mean, _ = trainer.predict_final(rows)
                chosen[i] = int(np.argmax(mean))
                if use_features and not halving:
                    train = groups != group
                    start = list(np.argsort(-rank[train].mean(0), kind="stable")[:N_START])
                    for rule in ("raw score", "surrogate"):
                        promoted[rule][i] = replay(
                            trainer, by_key, studies[i], keys, start, fractions, rule
                        )
        picks[label] = [chosen[i] for i in range(len(studies))]
        print(f"{label}: {time.perf_counter() - started:.0f} s", flush=True)

    for rule, chosen_by_study in promoted.items():
        picks[f"SH over the top {N_START}, promoted by {rule}"] = [
            chosen_by_study[i] for i in range(len(studies))
        ]
    filled = np.nan_to_num(acc, nan=0.0)
    best, median = filled.max(1), np.median(filled, axis=1)
    # Without every configuration's full-data accuracy (corpus v2), regret is by rank,
    # over the datasets where the configurations that reached all of the data differ by
    # more than 0.01 (where they tie, e.g. all at the majority class, ranks are noise).
    spread = np.nanmax(acc, axis=1) - np.nanmin(acc, axis=1)
    informative = (best - median) > 0.01 if not halving else spread > 0.01
    table = {}
    default = np.array(picks["best-default (all)"])
    for label, chosen in picks.items():
        c = np.array(chosen)
        got = filled[np.arange(len(studies)), c]
        # Against the best single default, per informative dataset (ranks, or accuracies).
        mine = rank[np.arange(len(studies)), c] if halving else got
        theirs = (rank if halving else filled)[np.arange(len(studies)), default]
        regret = (
            np.minimum((best - got) / np.maximum(best - median, 1e-9), 3.0)
            if not halving
            else 1.0 - rank[np.arange(len(studies)), c]
        )
        table[label] = {
            "mean_percentile_rank": float(rank[np.arange(len(studies)), c].mean()),
            "mean_clipped_regret": float(regret[informative].mean()),
            "share_better_than_best_default": float((mine > theirs)[informative].mean()),
            "share_worse_than_best_default": float((mine < theirs)[informative].mean()),
            **{
                f"{family}_regret": float(regret[informative & (families == family)].mean())
                for family in sorted(set(families))
            },
        }
    report = {
        "command": " ".join(["python", "benchmarks/zero_shot_logo.py", *sys.argv[1:]]),
        "regret": "rank regret (1 - percentile rank)" if halving else "normalised, clipped at 3",
        "n_datasets": len(studies),
        "n_groups": len(set(groups)),
        "n_informative": int(informative.sum()),
        "n_design_configs": len(keys),
        "trees": args.trees,
        "wall_seconds": time.perf_counter() - started,
        "rules": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    names = sorted(set(families))
    print(
        "\n| rule | mean percentile rank | mean regret | "
        + " | ".join(names)
        + " | better / worse than the best default |"
    )
    print("|---|---:|---:|" + "---:|" * len(names) + "---|")
    for label, row in sorted(table.items(), key=lambda kv: kv[1]["mean_clipped_regret"]):
        print(
            f"| {label} | {row['mean_percentile_rank']:.3f} | {row['mean_clipped_regret']:.3f} | "
            + " | ".join(f"{row[f'{n}_regret']:.3f}" for n in names)
            + f" | {row['share_better_than_best_default']:.0%} / "
            f"{row['share_worse_than_best_default']:.0%} |"
        )
    print(
        f"\n{len(studies)} datasets, {report['n_informative']} informative; "
        f"wall time {report['wall_seconds']:.0f} s"
    )


N_START = 8


@dataclass(frozen=True)
class DesignTable:
    """The shipped corpus's full-data results: ``acc[i, j]`` is the validation accuracy
    of design configuration ``keys[j]`` on study ``studies[i]`` (NaN where it failed),
    ``rank`` its percentile rank within the study (1 = best); ``info[study]`` is
    ``(group, model family, meta-features)``."""

    studies: list[str]
    keys: list[str]
    acc: np.ndarray
    rank: np.ndarray
    info: dict[str, tuple[str, str, dict[str, float]]]
    configs: dict[str, dict]


def design_table(exps: list) -> DesignTable:
    """:class:`DesignTable` of the experiences' full-data evaluations; for a corpus of
    successive-halving studies (v2), see :func:`halving_table`."""
    if any(e.halving for e in exps):
        return halving_table(exps)
    scores: dict[str, dict[str, float | None]] = defaultdict(dict)
    info: dict[str, tuple[str, str, dict[str, float]]] = {}
    configs: dict[str, dict] = {}
    for e in exps:
        if e.result.fidelity.fraction != 1.0:
            continue
        key = canonical_config_json(e.result.config)
        configs[key] = dict(e.result.config)
        ok = e.result.status is EvaluationStatus.COMPLETE and e.result.score is not None
        scores[e.study][key] = float(e.result.score) if ok else None
        info[e.study] = (str(e.group), str(e.model_family), dict(e.meta_features))
    studies = sorted(scores)
    keys = sorted(configs)
    acc = np.array(
        [[np.nan if scores[s].get(k) is None else scores[s][k] for k in keys] for s in studies],
        dtype=float,
    )
    rank = np.vstack([_quantiles([scores[s].get(k) for k in keys]) for s in studies])
    return DesignTable(studies, keys, acc, rank, info, configs)


def halving_table(exps: list) -> DesignTable:
    """:class:`DesignTable` of successive-halving studies: ``rank`` is each study's final
    percentile rank (:meth:`MetaModelTrainer.final_ranks`: how far a configuration got,
    then its mean score over the seeds; failures 0) and ``acc`` the mean full-data
    accuracy over the seeds (NaN where a configuration failed or stopped earlier)."""
    trainer = MetaModelTrainer(DEFAULT_SPACE).add(exps)
    final: dict[str, dict[str, float]] = defaultdict(dict)
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    info: dict[str, tuple[str, str, dict[str, float]]] = {}
    configs: dict[str, dict] = {}
    for (study, _), (q, e) in trainer.final_ranks().items():
        key = canonical_config_json(e.result.config)
        configs[key] = dict(e.result.config)
        final[study][key] = math.nan if q is None else q
        info[study] = (str(e.group), str(e.model_family), dict(e.meta_features))
    for e in exps:
        ok = e.result.status is EvaluationStatus.COMPLETE and e.result.score is not None
        if e.result.fidelity.fraction == 1.0 and ok:
            scores[e.study][canonical_config_json(e.result.config)].append(float(e.result.score))
    studies = sorted(final)
    keys = sorted(configs)
    ranked = np.array([[final[s].get(k, math.nan) for k in keys] for s in studies])
    acc = np.array(
        [[np.mean(scores[s][k]) if scores[s].get(k) else np.nan for k in keys] for s in studies]
    )
    acc[np.isnan(ranked)] = np.nan
    return DesignTable(studies, keys, acc, np.nan_to_num(ranked, nan=0.0), info, configs)


def replay(
    trainer: MetaModelTrainer,
    by_key: dict,
    study: str,
    keys: list[str],
    start: list[int],
    fractions: list[float],
    rule: str,
) -> int:
    """Successive halving (eta 2) on the corpus tables of one held-out study, started from
    ``start`` (its first entry is carried to every rung, as MetaProbing carries its pick):
    challengers promoted by raw score or by the surrogate's predicted final rank (which
    reads the partial result and the rank within the rung). Returns the configuration
    with the best full-data score among the survivors: the same scores the choice is
    judged by, so this is optimistic for both rules alike."""
    anchor, alive = start[0], list(start)

    def score(f: float, c: int) -> float | None:
        e = by_key.get((study, f, keys[c]))
        ok = e is not None and e.result.status is EvaluationStatus.COMPLETE
        return float(e.result.score) if ok and np.isfinite(e.result.score) else None

    for f in fractions[:-1]:
        quantile = dict(zip(alive, _quantiles([score(f, c) for c in alive])))
        measured = [c for c in alive if score(f, c) is not None]
        key = {c: -np.inf for c in alive}  # failures rank last
        if rule == "surrogate" and measured:
            rows = [
                trainer.surrogate_row(
                    e.meta_features, e.model_family, e.result.config, e.result, quantile[c]
                )
                for c in measured
                for e in [by_key[(study, f, keys[c])]]
            ]
            mean, _ = trainer.predict_final(np.vstack(rows))
            key.update(zip(measured, mean))
        else:
            key.update((c, quantile[c]) for c in measured)
        challengers = sorted((c for c in alive if c != anchor), key=lambda c: -key[c])
        alive = [*challengers[: max(1, len(challengers) // 2)], anchor]
    final = fractions[-1]
    return max(alive, key=lambda c: (score(final, c) or -1.0, c == anchor))


if __name__ == "__main__":
    main()
