"""Render the coverage study (``notmiwae.experiments.coverage``) from its CSVs, without
imputing again: OUT/README.md (tables) and OUT/coverage.png (coverage against nominal
level, a panel per data set).

    python -m notmiwae.experiments.coverage_report --out results/coverage
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from notmiwae.inference.checks import to_markdown
from notmiwae.inference.tables import atomic_path, write_text

from .protocol import prepare

KEY = ["dataset", "model", "ensemble", "seed"]


def load(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs, summary and means of the finished runs (those in runs.csv; a run stopped
    between writing its rows is counted once, its last rows kept)."""
    runs = pd.read_csv(out / "runs.csv").drop_duplicates(KEY, keep="last")
    done = runs[KEY]
    summary = pd.read_csv(out / "summary.csv").drop_duplicates(KEY + ["nominal"], keep="last")
    means = pd.read_csv(out / "means.csv").drop_duplicates(KEY + ["column"], keep="last")
    by_dataset = {"by": "dataset", "kind": "stable"}  # each data set's rows together
    return (runs.sort_values(**by_dataset), summary.merge(done, on=KEY).sort_values(**by_dataset),
            means.merge(done, on=KEY).sort_values(**by_dataset))


def _mean_se(values: pd.Series) -> str:
    if len(values) < 2:
        return f"{values.mean():.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(len(values)):.3f}"


def coverage_table(summary: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """A row per (data set, model, ensemble): coverage at each nominal level, the mean
    width of the 90% interval, CRPS and RMSE, each mean ± s.e. over seeds, and n."""
    rows = []
    for (dataset, model, ensemble), group in summary.groupby(
            ["dataset", "model", "ensemble"], sort=False):
        row = {"dataset": dataset, "model": model, "ensemble": ensemble}
        for nominal, level in group.groupby("nominal"):
            row[f"coverage {nominal:.0%}"] = _mean_se(level["coverage"])
        row["width 90%"] = _mean_se(group.loc[np.isclose(group["nominal"], 0.9), "width"])
        run = runs[(runs["dataset"] == dataset) & (runs["model"] == model)
                   & (runs["ensemble"] == ensemble)]
        row["CRPS"], row["RMSE"] = _mean_se(run["crps"]), _mean_se(run["rmse"])
        row["n"] = len(run)
        rows.append(row)
    return pd.DataFrame(rows)


def glance_table(summary: pd.DataFrame, nominal: float = 0.9) -> pd.DataFrame:
    """Coverage of the central ``nominal`` intervals, mean over seeds: a row per model
    (and ensemble), a column per data set ("-" where not run)."""
    level = summary[np.isclose(summary["nominal"], nominal)]
    label = level["model"].where(level["ensemble"] == "none",
                                 level["model"] + " (" + level["ensemble"] + ")")
    cells = level.assign(label=label).pivot_table(
        index="label", columns="dataset", values="coverage", aggfunc="mean", sort=False,
        dropna=False)
    cells = cells[list(dict.fromkeys(level["dataset"]))].sort_index()
    return (cells.apply(lambda column: column.map(lambda v: "-" if np.isnan(v) else f"{v:.3f}"))
            .rename_axis(index=f"model, coverage {nominal:.0%}", columns=None).reset_index())


def means_table(means: pd.DataFrame) -> pd.DataFrame:
    """Per (data set, model, ensemble), over the columns with missing entries (a complete
    column's interval is the complete data's own and covers its mean by construction):
    the share of (column, seed) pairs whose 95% Rubin interval covers the complete-data
    column mean, and the mean interval width."""
    incomplete = {d: set(np.flatnonzero(~prepare(d)[1].all(0)))
                  for d in means["dataset"].unique()}
    means = means[[c in incomplete[d] for d, c in zip(means["dataset"], means["column"],
                                                      strict=True)]]
    means = means.assign(width=means["hi"] - means["lo"])
    return (means.groupby(["dataset", "model", "ensemble"], sort=False)
            .agg(covered=("covers", "mean"), intervals=("covers", "size"),
                 mean_width=("width", "mean")).reset_index())


def plot(summary: pd.DataFrame, path: Path) -> None:
    """Coverage of the true values against the nominal level, mean over seeds: a line
    per model (and ensemble), a panel per data set, the diagonal dotted."""
    from notmiwae.inference.checks import pyplot

    plt = pyplot()
    datasets = list(dict.fromkeys(summary["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.6),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = summary[summary["dataset"] == dataset]
        for (model, ensemble), group in part.groupby(["model", "ensemble"], sort=False):
            curve = group.groupby("nominal")["coverage"].mean()
            label = model if ensemble == "none" else f"{model} ({ensemble})"
            ax.plot(curve.index, curve.to_numpy(), marker="o", label=label)
        ax.plot([0.4, 1], [0.4, 1], color="grey", linestyle=":")
        ax.set(title=dataset, xlabel="nominal level", ylabel="coverage of true values",
               xlim=(0.4, 1), ylim=(0, 1))
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def render(out: Path) -> str:
    """Write OUT/README.md and OUT/coverage.png from the study's CSVs; return the text."""
    runs, summary, means = load(out)
    settings = runs[["iterations", "impute_samples", "draws"]].drop_duplicates()
    text = "\n\n".join([
        "# Coverage of multiple imputations under the paper's MNAR mechanism",
        "Made by the commands in `commands.txt` (this folder); settings of the runs "
        "(iterations 0: MICE):\n\n" + to_markdown(settings),
        "## At a glance\n\nCoverage of the true values by the central 90% intervals "
        "of the draws, mean over seeds (the tables below give the s.e.).\n\n"
        + to_markdown(glance_table(summary)),
        "## Intervals for the missing entries\n\nCentral intervals of the m draws of each "
        "missing entry, standardised scale; mean ± s.e. over seeds (`summary.csv`).\n\n"
        + to_markdown(coverage_table(summary, runs)),
        "## Rubin's pooled column means\n\nOver the columns with missing entries: the "
        "share of (column, seed) pairs whose 95% interval covers the complete-data mean, "
        "and the intervals' mean width (`means.csv`). The intervals (Rubin's total variance, "
        "within plus between imputations) are for the population mean, so as intervals "
        "for this data set's own mean they are conservative: the within part is sampling "
        "variance that the complete data's mean does not have.\n\n"
        + to_markdown(means_table(means)),
        "![coverage against nominal level](coverage.png)\n"])
    write_text(text, out / "README.md")
    plot(summary, out / "coverage.png")
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m notmiwae.experiments.coverage_report",
                                description=__doc__)
    p.add_argument("--out", required=True, help="the coverage study's folder")
    print(render(Path(p.parse_args(argv).out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
