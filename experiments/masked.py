"""Does the latent mask variable help? Masked not-MIWAE against not-MIWAE, paired by seed.

    python -m notmiwae.experiments.masked --datasets red,white --seeds 5 --iterations 100000 \
        --impute-samples 10000 --out results/masked

Runs the paper's UCI protocol (``notmiwae.experiments.uci``) for every missing model in
{linear, selfmasking, selfmasking_known} x {deep, PPCA-like decoder} x {with, without
z_mask}, then pairs each masked run with the plain run of the same seed: OUT/pairs.md
and OUT/pairs.csv give the mean RMSE difference (masked - plain) with a 95% t-interval
over seeds and the relative change, and a grid of where the masked model is better or
worse (drawn in OUT/pairs.png); OUT/bound_pairs.csv (and pairs.md) the same for the
training bound. Resumable, like ``notmiwae.experiments.uci``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from . import uci
from .engines import add_engine_options, engine_argv
from .protocol import add_protocol_options, split_list
from .report import one_setting, paired, paired_grid, paired_markdown, plot_pairs

MISSING = ("linear", "selfmasking", "selfmasking_known")
FAMILIES = ("notmiwae", "notmiwae-ppca")
LABELS = ("plain", "masked")


def model_names() -> list[str]:
    return [f"{masked}{family}:{missing}" for family in FAMILIES for missing in MISSING
            for masked in ("", "masked-")]


def pairs(runs: pd.DataFrame, value: str = "rmse") -> pd.DataFrame:
    """One row per (data set, plain model): masked - plain, paired by seed. ``value``:
    "rmse" (lower is better) or "final_bound" (the training bound; higher is better)."""
    masked = runs["model"].str.startswith("masked-")
    as_plain = runs[masked].assign(model=runs.loc[masked, "model"].str.removeprefix("masked-"))
    higher_is_better = {"rmse": False, "final_bound": True}[value]
    return paired(runs[~masked], as_plain, LABELS, value, higher_is_better)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notmiwae.experiments.masked", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="red,white",
                        help="comma-separated UCI data sets (see notmiwae.experiments.uci)")
    add_protocol_options(parser)
    add_engine_options(parser, training=True)
    parser.add_argument("--out", required=True,
                        help="output folder: runs.csv, pairs(.csv, .md, .png), bound_pairs.csv")
    parser.add_argument("--report-only", action="store_true",
                        help="pair the runs already in OUT/runs.csv; train nothing")
    args = parser.parse_args(argv)
    if not args.report_only:
        uci.main(["--datasets", args.datasets, "--models", ",".join(model_names()),
                  "--seeds", str(args.seeds), "--iterations", str(args.iterations),
                  "--impute-samples", str(args.impute_samples), "--jobs", str(args.jobs),
                  *engine_argv(args), "--out", args.out])
    out = Path(args.out)
    runs = pd.read_csv(out / "runs.csv")
    runs = one_setting(runs[(runs["iterations"] == args.iterations)
                            & (runs["impute_samples"] == args.impute_samples)
                            & (runs["seed"] < args.seeds)
                            & (runs["dataset"].isin(split_list(args.datasets)))],
                       str(out / "runs.csv"))
    table, bounds = pairs(runs), pairs(runs, "final_bound")
    table.to_csv(out / "pairs.csv", index=False)
    bounds.to_csv(out / "bound_pairs.csv", index=False)
    text = paired_markdown(table, LABELS)
    bound_text = paired_markdown(bounds, LABELS, "final_bound", "bound", relative=False)
    grid = paired_grid(table)
    plot_pairs(table, str(out / "pairs.png"), LABELS)
    (out / "pairs.md").write_text(
        f"Masked not-MIWAE vs not-MIWAE, paired by seed; {args.iterations} iterations, "
        f"L = {args.impute_samples}.\n\n{text}\n"
        "Where the latent mask helps: the relative change in RMSE (masked vs plain), "
        "\"better\" or \"worse\" where the 95% interval of the paired difference "
        f"excludes zero:\n\n{grid}\n"
        "The training bound (nats per row, mean over the last 1,000 iterations; higher "
        f"is better), same pairs:\n\n{bound_text}")
    print(text + "\n" + grid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
