"""The paper's Appendix E from runs.csv alone: imputation RMSE as the MNAR cut-off moves.

The cut-off at offset 0 is Table 1's, whose runs the grid in results/uci already has
(5 seeds); the other offsets run into a folder of their own (2 seeds, as the paper):

    for offset in 0.25 0.5 0.75 1; do
      python -m notmiwae.experiments.uci --datasets banknote,concrete,red,white,yeast,breast \
          --models notmiwae:selfmasking_known,notmiwae-ppca:selfmasking,miwae,mean \
          --seeds 2 --iterations 100000 --impute-samples 10000 --offset $offset \
          --init glorot --out results/uci/offsets
    done
    python -m notmiwae.experiments.offsets \
        --runs results/uci/runs.csv,results/uci/offsets/runs.csv --out results/uci/offsets

The cut-off at mean + offset standard deviations leaves fewer values missing as the
offset grows. Writes OUT/offsets.md (RMSE mean ± s.e. per data set, model and offset,
with the missing rate and the number of seeds) and OUT/offsets.png (RMSE against missing
rate, a panel per data set, like the paper's figures 5 to 7), for the models of
``--models`` (default: the paper's four).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from notmiwae.inference.checks import to_markdown
from notmiwae.inference.tables import atomic_path, write_text

from .protocol import split_list
from .report import pyplot

MODELS = ("notmiwae:selfmasking_known", "notmiwae-ppca:selfmasking", "miwae", "mean")


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (data set, model, offset): missing rate, RMSE mean and s.e. over seeds, n, and
    the training settings (so that runs of other settings are never averaged together)."""
    keys = ["dataset", "model", "offset", "iterations", "impute_samples"]
    grouped = runs.groupby(keys, sort=False)
    out = grouped.agg(missing_rate=("missing_rate", "mean"), rmse=("rmse", "mean"),
                      sd=("rmse", "std"), n=("rmse", "size")).reset_index()
    out["se"] = out.pop("sd") / np.sqrt(out["n"])  # NaN for a single seed
    return out.sort_values(["dataset", "model", "offset"], kind="stable")


def plot(table: pd.DataFrame, path: Path) -> None:
    """RMSE (± s.e.) against missing rate, a line per model, a panel per data set."""
    plt = pyplot()
    datasets = list(dict.fromkeys(table["dataset"]))
    cols = min(3, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        for model, line in table[table["dataset"] == dataset].groupby("model", sort=False):
            line = line.sort_values("missing_rate")
            ax.errorbar(line["missing_rate"], line["rmse"], yerr=line["se"], marker="o",
                        markersize=3, capsize=2, label=model)
        ax.set(title=dataset, xlabel="missing rate", ylabel="RMSE")
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.offsets",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True,
                        help="runs.csv files of the offset runs, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated models to show (default: the paper's four)")
    parser.add_argument("--out", required=True, help="folder for offsets.md and .png")
    args = parser.parse_args(argv)
    runs = pd.concat([pd.read_csv(path) for path in split_list(args.runs)],
                     ignore_index=True).drop_duplicates()  # a file given twice counts once
    table = summary(runs[runs["model"].isin(split_list(args.models))])
    if table.empty:
        raise SystemExit(f"{args.runs}: no runs of the models {args.models}")
    out = Path(args.out)
    write_text(f"Imputation RMSE (standardised scale) as the cut-off moves to mean + "
               f"offset sd, from {args.runs}: mean and s.e. over n seeds.\n\n"
               + to_markdown(table) + "\n![RMSE against missing rate](offsets.png)\n",
               out / "offsets.md")
    plot(table, out / "offsets.png")
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
