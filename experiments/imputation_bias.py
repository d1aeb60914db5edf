"""Where do the imputations go? The signed imputation error of the paper's UCI runs.

    python -m notmiwae.experiments.imputation_bias --datasets concrete \
        --models notmiwae:linear,masked-notmiwae:linear --seeds 5 --iterations 100000 \
        --impute-samples 10000 --reference results/masked/runs.csv --out results/masked/bias

Trains and imputes exactly as ``notmiwae.experiments.uci`` does (seeds 0..S-1 as replicas of one
program, the paper's settings), but keeps more than the RMSE. Under the paper's
mechanism every missing value lies above its column's cut-off (mean + offset sd), so
the RMSE alone does not say whether a model imputes too high or too low. Per run
(OUT/runs.csv): the RMSE; the signed error, mean of (imputed - true) over the missing
entries; the mean true and mean imputed missing value; and the share of missing entries
imputed at or below the cut-off, the side the mechanism leaves observed. Per run and
column (OUT/columns.csv): the signed error, the mean true and mean imputed missing
value, and the column's lowest observed value (all on the standardised scale).
OUT/summary.md: means over seeds.

``--reference``: a runs.csv of the same runs (``results/masked/runs.csv``); the RMSE of
each run is set beside the one recorded there, which a rerun reproduces. The trained
groups are kept in OUT/trained/ (training snapshots, not in git): a later invocation
with more columns to compute re-imputes them without training again.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np
import pandas as pd

from .engines import add_engine_options, compile_setting, run_jobs
from .metrics import rmse_missing, signed_error_missing
from .outputs import append_rows, check_settings, log_command
from .protocol import (
    RunSpec,
    add_protocol_options,
    check_names,
    group_label,
    group_replicas,
    group_weight,
    imputed_runs,
    prepare,
    split_list,
)
from .report import interval


def describe_run(spec: RunSpec, x: np.ndarray, x_imp: np.ndarray,
                 mask: np.ndarray) -> tuple[dict, list[dict]]:
    """The run's row (RMSE, signed error, means, share imputed at or below the cut-off)
    and one row per column with missing entries (its signed error, mean true and mean
    imputed missing value, and lowest observed value)."""
    missing = ~mask
    key = {"dataset": spec.dataset, "model": spec.model, "seed": spec.seed}
    row = {**key, "iterations": spec.iterations, "impute_samples": spec.impute_samples,
           "offset": spec.offset, "rmse": rmse_missing(x, x_imp, mask),
           "signed_error": float(np.mean(x_imp[missing] - x[missing])),
           "mean_true": float(x[missing].mean()), "mean_imputed": float(x_imp[missing].mean()),
           "share_at_or_below_cutoff": float(np.mean(x_imp[missing] <= spec.offset))}
    per_column = signed_error_missing(x, x_imp, mask)
    columns = [{**key, "column": j, "missing": int(missing[:, j].sum()),
                "signed_error": float(per_column[j]),
                "mean_true": float(x[missing[:, j], j].mean()),
                "mean_imputed": float(x_imp[missing[:, j], j].mean()),
                "observed_min": float(x[mask[:, j], j].min())}
               for j in np.flatnonzero(missing.any(axis=0))]
    return row, columns


def describe_group(specs: list[RunSpec], trained: Path, compile: bool | str = "auto",
                   snapshot_every: int = 5000) -> tuple[list[dict], list[dict]]:
    """Train (or reload from ``trained``) and impute one group; describe each run.
    ``compile``, ``snapshot_every``: as in :func:`~.protocol.run_group`.

    The cut-off is ``offset`` on the standardised scale (mean 0, sd 1 per column)."""
    x, mask = prepare(specs[0].dataset, specs[0].offset)
    rows, columns = [], []
    runs = imputed_runs(specs, snapshots=trained, compile=compile,
                        snapshot_every=snapshot_every)
    for spec, (x_imp, _) in zip(specs, runs, strict=True):
        row, cols = describe_run(spec, x, x_imp, mask)
        rows.append(row)
        columns.extend(cols)
    return rows, columns


def summary(runs: pd.DataFrame, reference: pd.DataFrame | None) -> str:
    """Per (data set, model): 95% intervals over seeds, and the reference RMSE check."""
    lines = ["| data set | model | seeds | RMSE | signed error | mean imputed (true) | "
             "share at or below the cut-off (range) | largest RMSE change from the reference |",
             "|---|---|---|---|---|---|---|---|"]
    for (dataset, model), g in runs.groupby(["dataset", "model"], sort=False):
        check = "-"
        if reference is not None:
            both = g.merge(reference, on=["dataset", "model", "seed", "iterations",
                                          "impute_samples", "offset"], suffixes=("", "_ref"))
            if len(both):
                check = (f"{np.abs(both['rmse'] - both['rmse_ref']).max():.2g} "
                         f"({len(both)} runs)")
        lines.append(
            f"| {dataset} | {model} | {len(g)} | {interval(g['rmse'])} | "
            f"{interval(g['signed_error'])} | {g['mean_imputed'].mean():.3f} "
            f"({g['mean_true'].mean():.3f}) | {_spread(g['share_at_or_below_cutoff'])} | "
            f"{check} |")
    return "\n".join(lines) + "\n"


def _spread(values: pd.Series) -> str:
    """'mean (min-max)': for a share, where a t-interval could leave [0, 1]."""
    return f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.imputation_bias",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="concrete")
    parser.add_argument("--models", default="notmiwae:linear,masked-notmiwae:linear",
                        help="comma-separated trained models (names as notmiwae.experiments.uci)")
    add_protocol_options(parser)
    add_engine_options(parser, training=True)
    parser.add_argument("--reference", default=None,
                        help="a runs.csv of the same runs, to check the RMSE against")
    parser.add_argument("--out", required=True,
                        help="output folder: runs.csv, columns.csv, summary.md, trained/")
    args = parser.parse_args(argv)
    datasets, models = split_list(args.datasets), split_list(args.models)
    check_names(parser, datasets, models, trained_only=True)
    out = Path(args.out)
    check_settings(out, {"iterations": args.iterations,
                         "impute_samples": args.impute_samples}, {})
    log_command(out, "notmiwae.experiments.imputation_bias", argv)
    runs_path, columns_path = out / "runs.csv", out / "columns.csv"
    done = set() if not runs_path.exists() else set(
        pd.read_csv(runs_path)[["dataset", "model", "seed"]].itertuples(index=False, name=None))
    todo = [RunSpec(d, m, s, args.iterations, args.impute_samples)
            for d in datasets for m in models for s in range(args.seeds)
            if (d, m, s) not in done]
    groups = [(group,) for group in group_replicas(todo, args.seeds)]
    describe = functools.partial(describe_group, trained=(out / "trained").resolve(),
                                 compile=compile_setting(args), snapshot_every=args.snapshot_every)
    for _, (rows, columns) in run_jobs(describe, groups, args, label=group_label,
                                       weight=group_weight):
        for path, frame in ((runs_path, rows), (columns_path, columns)):
            append_rows(path, frame)
    runs = pd.read_csv(runs_path)
    runs = runs[runs["dataset"].isin(datasets) & runs["model"].isin(models)
                & (runs["seed"] < args.seeds)]
    reference = pd.read_csv(args.reference) if args.reference else None
    text = summary(runs, reference)
    (out / "summary.md").write_text(
        f"Signed imputation error, {args.iterations} iterations, L = "
        f"{args.impute_samples}; mean [95% t-interval] over seeds; reference: "
        f"{args.reference}.\n\n{text}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
