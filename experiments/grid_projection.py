"""How long a grid takes over N workers, projected from the per-group times of a shorter one.

    python -m notmiwae.experiments.grid_projection results/ray/grid-local/runs.csv \\
        --iterations 100000 --impute-samples 10000 --workers 1,2,8,16,48

Reads a runs.csv of ``notmiwae.experiments.uci`` (trained models only) and, per group of
runs (one model on one data set, its seeds trained together as replicas), takes its
training time (train_seconds x replicas) scaled linearly to ``--iterations`` and its
imputation time (the sum of impute_seconds) scaled linearly to ``--impute-samples``. The
groups are then placed on N workers longest first (each on the worker free soonest) and
the last to finish gives the grid's time. Each worker is what measured the times: one
CPU core, one PyTorch thread.
"""

from __future__ import annotations

import argparse
import heapq

import pandas as pd

from .baselines import BASELINES
from .protocol import split_list


def group_seconds(runs: pd.DataFrame, iterations: int, samples: int) -> pd.Series:
    """Projected seconds of each (data set, model) group of trained runs."""
    trained = runs[~runs["model"].isin(BASELINES)]
    per_group = trained.groupby(["dataset", "model"], sort=False).agg(
        train=("train_seconds", "sum"), impute=("impute_seconds", "sum"),
        iterations=("iterations", "first"), samples=("impute_samples", "first"))
    return (per_group["train"] * iterations / per_group["iterations"]
            + per_group["impute"] * samples / per_group["samples"])


def makespan(seconds: list[float], workers: int) -> float:
    """When the last job ends, jobs placed longest first on the worker free soonest."""
    free = [0.0] * workers
    for job in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + job)
    return max(free)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.grid_projection",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", help="a runs.csv of notmiwae.experiments.uci")
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--impute-samples", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,8,16,48",
                        help="comma-separated numbers of workers")
    args = parser.parse_args(argv)
    seconds = group_seconds(pd.read_csv(args.runs), args.iterations, args.impute_samples)
    lines = [f"{len(seconds)} groups; projected {args.iterations:,} iterations and "
             f"{args.impute_samples:,} importance samples; one group per worker at a time.",
             "", "| workers | hours |", "|---|---|"]
    for n in (int(w) for w in split_list(args.workers)):
        lines.append(f"| {n} | {makespan(list(seconds), n) / 3600:.1f} |")
    longest = seconds.sort_values().index[-1]
    lines += ["", f"Longest group: {' '.join(longest)}, {seconds.max() / 3600:.1f} h (no grid "
              "can end sooner without splitting groups); all groups together: "
              f"{seconds.sum() / 3600:.1f} h of one worker."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
