"""Keep the replica with the highest training bound? A one-off look at a runs.csv.

    python -m notmiwae.experiments.best_bound --runs results/uci/runs.csv \
        --out results/uci/best_bound.md

Replicas of one group start from different seeds and can end in different optima. The
bound they were trained on, L_K (``final_bound``: its mean over the last 1,000
minibatches), needs no true values, so choosing the replica whose bound is highest is a
rule a user can apply. Per (data set, model) at offset 0, among the seeds with a bound:
the mean RMSE over seeds, the RMSE of the replica with the highest bound, the lowest
RMSE, and Spearman's rank correlation between bound and RMSE (negative: a higher bound
goes with a lower error). One group per cell, so the chosen replica's RMSE is one draw,
not a mean with an interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from notmiwae.inference.checks import to_markdown
from notmiwae.inference.tables import write_text


def best_by_bound(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model) with at least two bounded seeds at offset 0."""
    if "final_bound" not in runs:
        raise SystemExit("no final_bound column: give a runs.csv of trained models")
    runs = runs[(runs["offset"] == 0) & runs["final_bound"].notna() & runs["rmse"].notna()]
    rows = []
    keys = ["dataset", "model", "iterations", "impute_samples"]
    for (dataset, model, *_), group in runs.groupby(keys, sort=False):
        group = group.drop_duplicates("seed", keep="last")
        if len(group) < 2:
            continue
        chosen = group.loc[group["final_bound"].idxmax()]
        rows.append({"dataset": dataset, "model": model, "seeds": len(group),
                     "mean RMSE": group["rmse"].mean(),
                     "highest bound's RMSE": chosen["rmse"],
                     "lowest RMSE": group["rmse"].min(),
                     "rank correlation": group["final_bound"].corr(group["rmse"],
                                                                   method="spearman")})
    return pd.DataFrame(rows)


def report(table: pd.DataFrame, source: str) -> str:
    """The table and counts: cells where the chosen replica beats the seeds' mean (at
    all, and by more than 0.01), and where it is worse by more than 0.01."""
    if table.empty:
        raise SystemExit(f"{source}: no model with two seeds and a training bound")
    gain = table["mean RMSE"] - table["highest bound's RMSE"]
    return (f"From `{source}` (offset 0): the replica with the highest training bound "
            "against the mean over seeds.\n\n" + to_markdown(table) +
            f"\nThe highest bound's replica imputes better than the seeds' mean in "
            f"{int((gain > 0).sum())} of {len(table)} cells (by more than 0.01 in "
            f"{int((gain > 0.01).sum())}; worse by more than 0.01 in "
            f"{int((gain < -0.01).sum())}).\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.best_bound",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="a runs.csv of experiments.uci")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    if not Path(args.runs).is_file():
        parser.error(f"--runs {args.runs}: no such file")
    text = report(best_by_bound(pd.read_csv(args.runs)), args.runs)
    if args.out:
        write_text(text, Path(args.out))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
