"""Tables and plots of experiment runs (a pandas frame with dataset, model, seed, rmse)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from notmiwae.inference.checks import pyplot


def one_setting(runs: pd.DataFrame, source: str) -> pd.DataFrame:
    """``runs`` if each (dataset, model, seed) appears once, else a clear exit: pairing
    by seed needs runs of one setting."""
    repeated = runs[runs.duplicated(["dataset", "model", "seed"], keep=False)]
    if not repeated.empty:
        r = repeated.iloc[0]
        raise SystemExit(f"{source}: {r['dataset']}, {r['model']}, seed {r['seed']} appears "
                         "more than once (runs with other settings); pair runs of one setting")
    return runs


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, lower, upper): mean +- t_{0.975, n-1} sd / sqrt(n); NaN bounds for n < 2."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return values.mean(), np.nan, np.nan
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean(), values.mean() - half, values.mean() + half


def interval(values: Sequence[float]) -> str:
    """'mean [lower, upper]': a 95% t-interval for the mean over seeds."""
    mean, lower, upper = t_interval(values)
    if np.isnan(lower):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{lower:.3f}, {upper:.3f}]"


def paired(base: pd.DataFrame, other: pd.DataFrame, labels: tuple[str, str],
           value: str = "rmse", higher_is_better: bool = False) -> pd.DataFrame:
    """One row per (data set, model) in both: ``other - base`` paired by seed, as a 95%
    t-interval over seeds (as text, and its bounds ``lower``/``upper``), the relative
    change with the interval's bounds scaled the same way, and the seeds where ``other``
    is better (lower, or higher with ``higher_is_better``)."""
    a, b = labels
    rows = []
    for (dataset, model), left in base.groupby(["dataset", "model"], sort=False):
        right = other[(other["dataset"] == dataset) & (other["model"] == model)]
        both = left.merge(right, on="seed", suffixes=(f"_{a}", f"_{b}"))
        if both.empty:
            continue
        diff = both[f"{value}_{b}"] - both[f"{value}_{a}"]
        _, lower, upper = t_interval(diff)
        rows.append({"dataset": dataset, "model": model, "seeds": len(both),
                     f"{value}_{a}": both[f"{value}_{a}"].mean(),
                     f"{value}_{b}": both[f"{value}_{b}"].mean(),
                     "difference": interval(diff), "lower": lower, "upper": upper,
                     **relative_change(diff, lower, upper, both[f"{value}_{a}"].mean()),
                     f"{b}_better_seeds": int(((diff > 0) if higher_is_better
                                               else (diff < 0)).sum())})
    return pd.DataFrame(rows)


def relative_change(diff: np.ndarray | Sequence[float], lower: float, upper: float,
                    base_mean: float) -> dict:
    """100 * (mean difference, and its interval's bounds) / |mean of the base values|."""
    scale = 100 / abs(base_mean)
    return {"relative_change_percent": scale * np.mean(diff),
            "relative_lower_percent": scale * lower, "relative_upper_percent": scale * upper}


def paired_markdown(table: pd.DataFrame, labels: tuple[str, str], value: str = "rmse",
                    name: str | None = None, relative: bool = True) -> str:
    """The rows of :func:`paired` as a markdown table (``name``: the value's heading;
    ``relative=False`` leaves out the relative change, meaningless for a log-density)."""
    a, b = labels
    name = name or value.upper()
    heads = ["data set", "model", "seeds", f"{name} {a}", f"{name} {b}", f"{b} - {a} [95%]",
             "relative change", f"seeds where {b} is better"]
    rows = [[r["dataset"], r["model"], str(r["seeds"]), f"{r[f'{value}_{a}']:.3f}",
             f"{r[f'{value}_{b}']:.3f}", r["difference"],
             f"{r['relative_change_percent']:+.1f}%", f"{r[f'{b}_better_seeds']}/{r['seeds']}"]
            for r in table.to_dict("records")]
    keep = [i for i in range(len(heads)) if relative or heads[i] != "relative change"]
    lines = ["| " + " | ".join(row[i] for i in keep) + " |" for row in [heads, *rows]]
    lines.insert(1, "|---" * len(keep) + "|")
    return "\n".join(lines) + "\n"


def paired_grid(table: pd.DataFrame, higher_is_better: bool = False) -> str:
    """The rows of :func:`paired` as a grid, a row per model and a column per data set:
    the relative change, marked "better" or "worse" (for the second of the pair) where
    the 95% interval excludes zero and "no clear difference" where it does not."""
    def cell(r) -> str:
        if r["lower"] > 0 or r["upper"] < 0:
            better = (r["lower"] > 0) == higher_is_better
            return f"{r['relative_change_percent']:+.1f}% {'better' if better else 'worse'}"
        return f"{r['relative_change_percent']:+.1f}% no clear difference"

    cells = {(r["model"], r["dataset"]): cell(r) for r in table.to_dict("records")}
    return _grid(cells, table["model"], table["dataset"])


def _grid(cells: dict, models, datasets) -> str:
    """A markdown table, a row per model and a column per data set (in first-seen
    order), of ``cells[(model, dataset)]``; "-" where a pair has no cell."""
    models, datasets = list(dict.fromkeys(models)), list(dict.fromkeys(datasets))
    lines = ["| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(cells.get((model, d), "-") for d in datasets)
                     + " |")
    return "\n".join(lines) + "\n"


def summarise(runs: pd.DataFrame, value: str = "rmse") -> pd.DataFrame:
    """Mean, standard error (sd / sqrt(n), ddof=1) and n per (model, dataset)."""
    grouped = runs.groupby(["model", "dataset"], sort=False)[value]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n"])
    return out


def markdown_table(runs: pd.DataFrame, value: str = "rmse") -> str:
    """A row per model, a column per data set: 'mean ± s.e. (n)', like the paper's Table 1."""
    summary = summarise(runs, value)
    cells = {(r.model, r.dataset): _cell(r) for r in summary.itertuples()}
    return _grid(cells, runs["model"], runs["dataset"])


def _cell(r) -> str:
    se = "" if r.n < 2 else f" ± {r.se:.2f}"
    return f"{r.mean:.2f}{se} (n={r.n})"


def plot_pairs(table: pd.DataFrame, path: str, labels: tuple[str, str],
               value: str = "rmse") -> None:
    """The rows of :func:`paired` as a forest plot: per model (rows) and data set
    (colours), the relative change with its 95% interval."""
    plt = pyplot()
    models = list(dict.fromkeys(table["model"]))
    datasets = list(dict.fromkeys(table["dataset"]))
    step = 0.8 / len(datasets)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(models) * max(1, len(datasets) / 3)))
    for i, dataset in enumerate(datasets):
        part = table[table["dataset"] == dataset]
        centre = part["relative_change_percent"]
        below = centre - part["relative_lower_percent"]
        above = part["relative_upper_percent"] - centre
        y = [models.index(m) + (i - (len(datasets) - 1) / 2) * step for m in part["model"]]
        ax.errorbar(centre, y, xerr=[below, above], fmt="o", capsize=2, label=dataset)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(np.arange(len(models)), models)
    ax.invert_yaxis()
    ax.set_xlabel(f"{labels[1]} vs {labels[0]}: relative change in {value.upper()} (%), "
                  "95% interval over seeds", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_table(runs: pd.DataFrame, path: str, value: str = "rmse") -> None:
    """Grouped bars (one group per data set, one bar per model) with standard-error bars."""
    plt = pyplot()
    summary = summarise(runs, value)
    datasets = list(dict.fromkeys(runs["dataset"]))
    models = list(dict.fromkeys(runs["model"]))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.2 + 1.6 * len(datasets) + 0.2 * len(models), 4))
    for i, model in enumerate(models):
        part = summary[summary["model"] == model].set_index("dataset").reindex(datasets)
        ax.bar(np.arange(len(datasets)) + (i - (len(models) - 1) / 2) * width, part["mean"],
               width, yerr=part["se"].fillna(0), label=model, capsize=2)
    ax.set_xticks(np.arange(len(datasets)), datasets)
    ax.set_ylabel(f"imputation {value.upper()} (standardised)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
