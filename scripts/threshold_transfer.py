#!/usr/bin/env python3
"""How three multi-label decision rules transfer, from the predictions a RESTORE CV keeps.

A multi-label run says "yes" to a label when its probability reaches that label's
threshold, chosen on the selection set (for RESTORE, `val.json`: src/metrics/thresholds.rs,
the grid 0.05..0.95, ties to the value nearest 0.5). The held-out folds come from
`train.json`, whose label mix differs from `val.json`'s (1.03 labels a meme against 1.45;
Feeling Down on 24 % of memes against 54 %), so thresholds that fit one need not fit the
other. This script scores, for every fold of a `memescope cv` directory:

  * the held-out fold (`held-out.jsonl`, train-like data) under the run's own decisions
    (thresholds chosen on val.json), under 0.5 for every label, and under top-1 (the
    single most probable label);
  * unseen halves of val.json (the fold's `predictions.jsonl`, val-like data): thresholds
    chosen on one random half and applied to the other, against 0.5 and top-1 on that
    other half (100 random halvings a fold, seeded).

Standard library only. Usage: scripts/threshold_transfer.py runs/cv-<RESTORE CV> [...]
"""

import json
import random
import sys
from pathlib import Path

GRID = sorted((k / 20 for k in range(1, 20)), key=lambda t: (abs(t - 0.5), t))
HALVINGS = 100


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def label_f1(rows, label, says_yes):
    """F1 of one label, where `says_yes(row, label)` is the decision."""
    tp = predicted = support = 0
    for row in rows:
        yes, truth = says_yes(row, label), label in row["truth"]
        tp += yes and truth
        predicted += yes
        support += truth
    return 2 * tp / (support + predicted) if support + predicted else 0.0


def macro_f1(rows, says_yes):
    labels = sorted(rows[0]["probabilities"])
    return sum(label_f1(rows, label, says_yes) for label in labels) / len(labels)


def own_decisions(row, label):
    return label in row["predicted"]


def top1(row, label):
    probabilities = row["probabilities"]
    return max(probabilities, key=probabilities.get) == label


def at(threshold):
    return lambda row, label: row["probabilities"][label] >= threshold


def tuned_thresholds(rows):
    """Per label, the grid threshold with the best F1 on `rows` (first best from 0.5 out)."""
    thresholds = {}
    for label in rows[0]["probabilities"]:
        best = (-1.0, 0.5)
        for threshold in GRID:
            score = label_f1(rows, label, at(threshold))
            if score > best[0]:
                best = (score, threshold)
        thresholds[label] = best[1]
    return thresholds


def halves(rows, rng):
    order = list(range(len(rows)))
    rng.shuffle(order)
    middle = len(rows) // 2
    return [rows[i] for i in order[:middle]], [rows[i] for i in order[middle:]]


def val_transfer(rows):
    """Mean macro-F1 on unseen val halves: (thresholds from the other half, 0.5, top-1)."""
    rng = random.Random(0)
    sums = [0.0, 0.0, 0.0]
    for _ in range(HALVINGS):
        choose, score = halves(rows, rng)
        thresholds = tuned_thresholds(choose)
        tuned = macro_f1(score, lambda row, l: row["probabilities"][l] >= thresholds[l])
        for i, value in enumerate((tuned, macro_f1(score, at(0.5)), macro_f1(score, top1))):
            sums[i] += value
    return [s / HALVINGS for s in sums]


def main(cv_dirs):
    for cv_dir in map(Path, cv_dirs):
        folds = sorted(cv_dir.glob("fold-*"))
        if not folds:
            sys.exit(f"{cv_dir}: no fold-* directories (is it a `memescope cv` directory?)")
        print(f"== {cv_dir}")
        print("fold   held-out: val thresholds / 0.5 / top-1   val halves: tuned / 0.5 / top-1")
        totals = [0.0] * 6
        for fold in folds:
            held_out = read(fold / "held-out.jsonl")
            scores = [macro_f1(held_out, rule) for rule in (own_decisions, at(0.5), top1)]
            scores += val_transfer(read(fold / "predictions.jsonl"))
            totals = [t + s for t, s in zip(totals, scores)]
            print(f"{fold.name:6} " + "  ".join(f"{s:.4f}" for s in scores))
        print("mean   " + "  ".join(f"{t / len(folds):.4f}" for t in totals))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
