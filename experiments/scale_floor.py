"""A one-off study: does the decoder's scale floor explain MIWAE's gap to the paper?

The Gaussian decoder here has sigma_j(z) = softplus(f_j(z)) + 1e-3; the paper's
TensorFlow code has softplus(f_j(z)) alone. Where a feature takes few distinct values
(concrete's), a decoder can shrink sigma on observed entries towards the floor, so the
floor could change what MIWAE learns. This study trains the same runs (same seeds, the
paper's settings) with the floor removed, a decoder registered under another name, so
nothing else changes:

    python -m notmiwae.experiments.scale_floor --datasets concrete --models miwae \\
        --out results/uci/scale_floor

It writes OUT/runs.csv (one row per run, as the UCI runner's, plus ``floor_share``: the
share of observed entries whose softplus part is below 1e-3 at the encoder's mean) and
prints each run beside the run of the same data set, model, seed and settings in
``--against`` (default results/uci/runs.csv, made with the same initialisation, batch
and K: the paper's). Resumable: training is saved in OUT/snapshots. A group whose bound
stops being finite (the unfloored likelihood is unbounded as sigma -> 0) is recorded as
diverged, with the iteration, instead of RMSEs.
"""

from __future__ import annotations

import argparse
import functools
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notmiwae.inference.cli import positive_int
from notmiwae.inference.device import program_device
from notmiwae.inference.stopping import TrainingDiverged
from notmiwae.models.decoders import GaussianDecoder
from notmiwae.models.program import NotMIWAE
from notmiwae.models.registry import config_from_name, register

from .outputs import append_rows, check_settings, log_command
from .protocol import RunSpec, run_group, split_list, train_group

UNFLOORED = "gaussian_unfloored"
FLOOR = inspect.signature(GaussianDecoder).parameters["min_scale"].default  # 1e-3
PAIRED_ON = ["dataset", "model", "seed", "iterations", "impute_samples", "offset"]


def register_unfloored() -> None:
    """The Gaussian decoder with sigma_j(z) = softplus(f_j(z)), as the paper's code."""
    register("decoder", UNFLOORED, functools.partial(GaussianDecoder, min_scale=0.0))


@torch.no_grad()
def floor_share(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of observed entries whose softplus(f_j(z)) is below the floor 1e-3, at z the
    mean of q(z | x^o)."""
    device = program_device(program)
    x, mask = x.to(device), mask.to(device)
    decoder = program.decoder
    h = decoder.trunk(program.encoder(x).base_dist.loc)
    softplus = decoder.scale_of(h) - decoder.min_scale
    return float((softplus[mask] < FLOOR).double().mean())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m notmiwae.experiments.scale_floor",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="concrete")
    p.add_argument("--models", default="miwae", help="deep models (Gaussian decoder)")
    p.add_argument("--seeds", type=positive_int, default=5)
    p.add_argument("--iterations", type=positive_int, default=100_000)
    p.add_argument("--impute-samples", type=positive_int, default=10_000)
    p.add_argument("--against", default="results/uci/runs.csv",
                   help="runs with the floor, paired by seed")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    args.datasets, args.models = split_list(args.datasets), split_list(args.models)
    for model in args.models:
        if config_from_name(model, 4).decoder != "gaussian":
            p.error(f"{model} has no Gaussian decoder to take the floor from")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # one core per study, as the other runners
    out = Path(args.out)
    check_settings(out, {"seeds": args.seeds, "iterations": args.iterations,
                         "impute_samples": args.impute_samples, "init": "glorot"}, {})
    log_command(out, "notmiwae.experiments.scale_floor", argv)
    register_unfloored()
    path = out / "runs.csv"
    for dataset in args.datasets:
        for model in args.models:
            done = pd.read_csv(path) if path.exists() else pd.DataFrame(
                columns=["dataset", "model"])
            if ((done["dataset"] == dataset) & (done["model"] == model)).any():
                continue
            specs = [RunSpec(dataset, model, s, args.iterations, args.impute_samples,
                             init="glorot") for s in range(args.seeds)]
            append_rows(path, group_rows(specs, out / "snapshots"))
    print(comparison(pd.read_csv(path), Path(args.against)))
    return 0


def group_rows(specs: list[RunSpec], snapshots: Path) -> list[dict]:
    """The UCI runner's rows of a group trained without the floor, with each run's
    ``floor_share``; or, if training diverged, a row per run saying where."""
    parts = {"decoder": UNFLOORED}
    try:
        rows = run_group(specs, snapshots=snapshots, parts=parts)
    except TrainingDiverged as err:
        return [{"dataset": s.dataset, "model": s.model, "seed": s.seed,
                 "iterations": s.iterations, "impute_samples": s.impute_samples,
                 "offset": s.offset, "decoder": UNFLOORED, "rmse": float("nan"),
                 "diverged_at": err.iteration} for s in specs]
    result, xt, mt = train_group(specs, snapshots=snapshots, parts=parts)  # reloaded
    for r, row in enumerate(rows):
        row.update(decoder=UNFLOORED, floor_share=floor_share(result.replica(r), xt, mt))
    return rows


def comparison(runs: pd.DataFrame, against: Path) -> str:
    """Each run beside the run of the same data set, model, seed and settings in
    ``against`` (one each), and the paired difference per data set and model."""
    if not against.exists():
        return runs.to_string(index=False)
    paired = runs.merge(pd.read_csv(against)[PAIRED_ON + ["rmse"]], on=PAIRED_ON,
                        suffixes=("", "_floored"), validate="one_to_one")
    paired["difference"] = paired["rmse"] - paired["rmse_floored"]
    lines = [paired[["dataset", "model", "seed", "rmse", "rmse_floored", "difference",
                     "floor_share"]].to_string(index=False)]
    for (dataset, model), group in paired.groupby(["dataset", "model"]):
        d = group["difference"].to_numpy()
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        lines.append(f"{dataset} {model}: without the floor {group['rmse'].mean():.3f}, "
                     f"with it {group['rmse_floored'].mean():.3f}; paired difference "
                     f"{d.mean():+.3f} +- {se:.3f} (s.e., {len(d)} seeds)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
