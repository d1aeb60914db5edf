"""Our UCI grid beside the paper's Table 1 and Table A1, from runs.csv alone (no training).

    python -m notmiwae.experiments.paper --runs results/uci/runs.csv --out results/uci

Writes OUT/paper_table.md and OUT/paper_table.png: per cell our mean ± s.e. over seeds
(5 in the paper's protocol) beside the paper's, marked where they differ by more than
2 combined standard errors + 0.02, sqrt(se_ours^2 + se_paper^2) * 2 + 0.02, with a count
of the cells that agree; and OUT/mask_accuracy.md: the accuracy of each not-MIWAE model's
learned missing model at predicting the true mask from the complete data (runs.csv's
``mask_accuracy``, over all entries, and ``mask_accuracy_incomplete``, over the columns
with a missing value), beside the paper's Table A1 where the paper gives a value.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from notmiwae.inference.tables import atomic_path, write_text

from .report import pyplot, summarise

DATASETS = ("banknote", "concrete", "red", "white", "yeast", "breast")
# The paper's rows (Ipsen, Mattei & Frellsen, ICLR 2021, Table 1) under our model names.
ROWS = {
    "ppca": "PPCA",
    "notmiwae-ppca:linear": "not-MIWAE-PPCA agnostic",
    "notmiwae-ppca:selfmasking": "not-MIWAE-PPCA self-masking",
    "notmiwae-ppca:selfmasking_known": "not-MIWAE-PPCA self-masking known",
    "miwae": "MIWAE",
    "notmiwae:linear": "not-MIWAE agnostic",
    "notmiwae:selfmasking": "not-MIWAE self-masking",
    "notmiwae:selfmasking_known": "not-MIWAE self-masking known",
    "missforest": "missForest",
    "mice": "MICE",
    "mean": "mean",
}
# (mean, s.e.) per data set, in the order of DATASETS.
TABLE1 = {
    "ppca": [(1.39, 0.00), (1.61, 0.00), (1.61, 0.00), (1.57, 0.00), (1.67, 0.00), (0.90, 0.00)],
    "notmiwae-ppca:linear": [(1.25, 0.15), (1.47, 0.01), (1.32, 0.00), (1.27, 0.01),
                             (1.20, 0.05), (0.78, 0.00)],
    "notmiwae-ppca:selfmasking": [(0.57, 0.00), (1.31, 0.00), (1.13, 0.00), (0.99, 0.00),
                                  (0.78, 0.00), (0.72, 0.00)],
    "notmiwae-ppca:selfmasking_known": [(0.57, 0.00), (1.31, 0.00), (1.13, 0.00),
                                        (0.99, 0.00), (0.77, 0.00), (0.72, 0.00)],
    "miwae": [(1.19, 0.01), (1.66, 0.01), (1.62, 0.01), (1.55, 0.01), (1.72, 0.01),
              (1.20, 0.01)],
    "notmiwae:linear": [(0.80, 0.08), (2.63, 0.12), (1.30, 0.01), (1.37, 0.00), (1.43, 0.02),
                        (1.10, 0.01)],
    "notmiwae:selfmasking": [(1.88, 0.85), (1.26, 0.02), (1.08, 0.02), (1.04, 0.01),
                             (1.48, 0.03), (0.74, 0.01)],
    "notmiwae:selfmasking_known": [(0.74, 0.05), (1.12, 0.04), (1.07, 0.00), (1.04, 0.00),
                                   (1.38, 0.02), (0.76, 0.01)],
    "missforest": [(1.28, 0.00), (1.76, 0.01), (1.64, 0.00), (1.63, 0.00), (1.66, 0.00),
                   (1.57, 0.00)],
    "mice": [(1.41, 0.00), (1.70, 0.00), (1.68, 0.00), (1.41, 0.00), (1.72, 0.00),
             (1.17, 0.00)],
    "mean": [(1.73, 0.00), (1.85, 0.00), (1.83, 0.00), (1.74, 0.00), (1.69, 0.00),
             (1.82, 0.00)],
}
# Table A1: the paper gives the self-masking-known model's accuracy only.
TABLE_A1 = {"notmiwae:selfmasking_known": [0.99, 0.97, 0.97, 0.95, 0.78, 0.98]}
MARGIN = 0.02  # added to 2 combined standard errors before a cell counts as differing


def paper_cells() -> pd.DataFrame:
    """The paper's Table 1 as rows (model, dataset, paper_mean, paper_se)."""
    return pd.DataFrame([(m, d, mean, se) for m, cells in TABLE1.items()
                         for d, (mean, se) in zip(DATASETS, cells, strict=True)],
                        columns=["model", "dataset", "paper_mean", "paper_se"])


def compare(runs: pd.DataFrame) -> pd.DataFrame:
    """Every cell of Table 1 with ours (mean, se, n; NaN where we have no runs) and
    ``differs``: |ours - paper| > 2 sqrt(se^2 + se_paper^2) + MARGIN (NaN without runs)."""
    if "offset" in runs:  # the paper's cut-off only (other offsets: experiments.offsets)
        runs = runs[runs["offset"] == 0]
    ours = summarise(runs[runs["model"].isin(ROWS)])[["model", "dataset", "mean", "se", "n"]]
    cells = paper_cells().merge(ours, on=["model", "dataset"], how="left")
    gap = (cells["mean"] - cells["paper_mean"]).abs()
    allowed = 2 * np.sqrt(cells["se"].fillna(0) ** 2 + cells["paper_se"] ** 2) + MARGIN
    cells["differs"] = (gap > allowed).where(cells["mean"].notna())
    return cells


def markdown(cells: pd.DataFrame) -> str:
    """Table 1 with 'ours / paper' per cell, '**' on differing cells, and the count."""
    lines = ["| model | " + " | ".join(DATASETS) + " |", "|---|" + "---|" * len(DATASETS)]
    for model, label in ROWS.items():
        row = cells[cells["model"] == model].set_index("dataset")
        lines.append(f"| {label} | " + " | ".join(_cell(row.loc[d]) for d in DATASETS) + " |")
    have = cells["mean"].notna()
    agree = int((cells["differs"] == False).sum())  # noqa: E712 - NaN is neither
    missing = len(cells) - int(have.sum())
    left = (f"{missing} of the {len(cells)} cells {'has' if missing == 1 else 'have'} "
            "no runs yet" if missing
            else f"every one of the {len(cells)} cells has runs")
    return ("\n".join(lines) + f"\n\n{agree} of the {int(have.sum())} cells with runs agree "
            f"with the paper (|ours - paper| <= 2 combined s.e. + {MARGIN}); {left}.\n")


def _cell(c: pd.Series) -> str:
    paper = f"{c.paper_mean:.2f} ± {c.paper_se:.2f}"
    if np.isnan(c["mean"]):
        return f"- / {paper}"
    se = f" ± {c.se:.2f}" if c.n > 1 else ""
    mark = "**" if c.differs else ""
    return f"{mark}{c['mean']:.2f}{se} (n={int(c.n)}){mark} / {paper}"


def mask_accuracy_markdown(runs: pd.DataFrame, column: str = "mask_accuracy") -> str:
    """The learned missing models' mask accuracy ``column`` (mean ± s.e.), beside Table A1."""
    has = runs[runs["model"].isin(ROWS) & runs[column].notna()]
    ours = summarise(has, column).set_index(["model", "dataset"])
    lines = ["| model | " + " | ".join(DATASETS) + " |", "|---|" + "---|" * len(DATASETS)]
    for model in dict.fromkeys(m for m in ROWS if m in set(has["model"])):
        paper = TABLE_A1.get(model)
        cells = []
        for i, d in enumerate(DATASETS):
            ours_cell = (f"{ours.loc[(model, d), 'mean']:.3f} ± {ours.loc[(model, d), 'se']:.3f}"
                         f" (n={int(ours.loc[(model, d), 'n'])})"
                         if (model, d) in ours.index else "-")
            cells.append(ours_cell + (f" / {paper[i]:.2f}" if paper else ""))
        lines.append(f"| {ROWS[model]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(cells: pd.DataFrame, path: Path) -> None:
    """Ours against the paper's value per cell, with 2-s.e. bars; differing cells in red."""
    plt = pyplot()
    have = cells[cells["mean"].notna()]
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    colour = np.where(have["differs"].astype(bool), "tab:red", "tab:blue")
    ax.errorbar(have["paper_mean"], have["mean"], xerr=2 * have["paper_se"],
                yerr=2 * have["se"].fillna(0), fmt="none", ecolor="grey", linewidth=0.8)
    ax.scatter(have["paper_mean"], have["mean"], c=colour, s=18, zorder=3)
    top = float(np.nanmax([have["mean"].max(), have["paper_mean"].max()])) + 0.1
    ax.plot([0, top], [0, top], color="black", linewidth=0.8)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("the paper's RMSE (Table 1)")
    ax.set_ylabel("ours (mean over seeds)")
    ax.set_title("red: differs by more than 2 combined s.e. + 0.02", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.paper",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="a runs.csv of notmiwae.experiments.uci")
    parser.add_argument("--out", required=True, help="folder for the tables and the figure")
    args = parser.parse_args(argv)
    runs = pd.read_csv(args.runs)
    out = Path(args.out)
    cells = compare(runs)
    table = markdown(cells)
    write_text(f"Imputation RMSE, ours / the paper's (Table 1), from {args.runs}; ** marks "
               "a cell where they differ.\n\n" + table, out / "paper_table.md")
    plot(cells, out / "paper_table.png")
    if "mask_accuracy" in runs:
        text = ("Accuracy of the learned p(s | x) at predicting the true mask from the "
                "complete data (threshold 0.5), ours / the paper's Table A1 (given for "
                f"self-masking known only), from {args.runs}.\n\nOver all entries:\n\n"
                + mask_accuracy_markdown(runs))
        if runs.get("mask_accuracy_incomplete", pd.Series(dtype=float)).notna().any():
            text += ("\nOver the entries of the columns with a missing value only (the "
                     "first floor(D/2); runs made before this was recorded: -), beside the "
                     "same Table A1 values, which do not say which entries they "
                     "count:\n\n"
                     + mask_accuracy_markdown(runs, "mask_accuracy_incomplete"))
        write_text(text, out / "mask_accuracy.md")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
