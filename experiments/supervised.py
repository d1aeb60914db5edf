"""Joint supervision: does training the regressor inside the not-MIWAE bound help?

    python -m notmiwae.experiments.supervised --datasets red,concrete --seeds 5 \
        --iterations 100000 --impute-samples 10000 --out results/supervised

Per data set: one 80/20 split (``--split-seed``); features standardised with the training
rows' statistics; the paper's MNAR mechanism applied to training *and* test features (in
the first floor(D/2) columns, values above the training mean go missing). Each method
runs with seeds 0..S-1 (initialisation, minibatches, noise; the generative models train
their seeds as replicas of one program). Methods:

- ``joint``: not-MIWAE with p(y | x) inside the importance weights (one program),
  predicting E[y | x^o, s] on the test rows, whose features it imputes itself;
- ``two-stage``: not-MIWAE, then the same MLP trained on its imputations;
- ``mean-imputed``: the MLP on mean-imputed features;
- ``oracle``: the MLP on the complete features (for scale only).

The MLP: one hidden layer of 128 ReLU units, squared loss. Writes OUT/runs.csv (a row
per data set, seed and method: test MSE of y on its original scale, imputation RMSE of
the training and test rows) and OUT/summary.md (means with 95% intervals over seeds, and
the paired difference joint - two-stage).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.neural_network import MLPRegressor

from notmiwae.inference.imputation import impute, predict_target
from notmiwae.inference.training import FitResult, TrainConfig, fit
from notmiwae.models.registry import config_from_name

from .baselines import impute_baseline
from .datasets import DATASETS, load_target
from .engines import add_engine_options, run_jobs
from .metrics import rmse_missing
from .outputs import append_rows, check_settings, log_command
from .protocol import add_protocol_options, split_list
from .report import interval

MISSING = "selfmasking_known"
# The settings of results/supervised, run before OUT/settings.json was kept.
EARLIER_SETTINGS = {"seeds": 5, "iterations": 100_000, "impute_samples": 10_000, "split_seed": 0}


def split(name: str, seed: int) -> dict:
    """Standardised train/test features (complete and masked) and target."""
    features, target = load_target(name)
    x, y = features.to_numpy(), target.to_numpy(dtype=float)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    train, test = order[:cut], order[cut:]
    mean, sd = x[train].mean(0), x[train].std(0)
    xs = (x - mean) / sd
    # The mechanism's cut-off is the training mean (0 after standardising), for both parts.
    mask = np.ones(xs.shape, dtype=bool)
    half = xs.shape[1] // 2
    mask[:, :half] = xs[:, :half] <= 0.0
    return {"x_train": xs[train], "x_test": xs[test], "m_train": mask[train],
            "m_test": mask[test], "y_train": y[train], "y_test": y[test],
            "y_mean": y[train].mean(), "y_sd": y[train].std()}


def _mlp(seed: int) -> MLPRegressor:
    return MLPRegressor(hidden_layer_sizes=(128,), activation="relu", max_iter=2000,
                        early_stopping=False, random_state=seed)


def _tensors(x: np.ndarray, mask: np.ndarray):
    return (torch.tensor(np.where(mask, x, 0.0), dtype=torch.float32), torch.tensor(mask))


def standardised_target(d: dict) -> torch.Tensor:
    """The training rows' y, standardised with their own mean and sd: what p(y | x) models."""
    return torch.tensor((d["y_train"] - d["y_mean"]) / d["y_sd"], dtype=torch.float32)


def predict_y(program, x: torch.Tensor, mask: torch.Tensor, samples: int, seed: int,
              d: dict) -> np.ndarray:
    """E[y | x^o, s] from a joint program (weights without y), on y's original scale."""
    return (predict_target(program, x, mask, samples, seed=seed).cpu().numpy() * d["y_sd"]
            + d["y_mean"])


def fit_generative(d: dict, target: bool, seeds: list[int], iterations: int,
                   device: str | None = None, progress: bool = False,
                   snapshot: str | Path | None = None) -> FitResult:
    """not-MIWAE on a split's training rows, with p(y | x) inside the weights when
    ``target`` (the joint model); the seeds train as replicas. ``snapshot``: see
    ``notmiwae.inference.training.fit`` (resume, or continue a shorter run)."""
    xt, mt = _tensors(d["x_train"], d["m_train"])
    config = config_from_name(f"notmiwae:{MISSING}", xt.shape[1], target=target)
    return fit(config, xt, mt, TrainConfig(iterations=iterations, seed=seeds[0]),
               device=device, progress=progress, replicas=len(seeds),
               y=standardised_target(d) if target else None, snapshot=snapshot)


def run_dataset(name: str, seeds: list[int], iterations: int, samples: int,
                split_seed: int = 0, device: str | None = None) -> list[dict]:
    """All methods for one data set and split; the generative models' seeds as replicas."""
    d = split(name, split_seed)
    xt, mt = _tensors(d["x_train"], d["m_train"])
    xe, me = _tensors(d["x_test"], d["m_test"])
    rows: list[dict] = []
    for method, target in (("joint", True), ("two-stage", False)):
        result = fit_generative(d, target, seeds, iterations, device, sys.stderr.isatty())
        for r, seed in enumerate(seeds):
            program = result.replica(r)
            imp_train = impute(program, xt, mt, samples, seed=seed).cpu().numpy()
            imp_test = impute(program, xe, me, samples, seed=seed).cpu().numpy()
            if target:
                pred = predict_y(program, xe, me, samples, seed, d)
            else:
                pred = _mlp(seed).fit(imp_train, d["y_train"]).predict(imp_test)
            rows.append(_row(name, seed, method, d, pred, imp_train, imp_test,
                             result.seconds / len(seeds)))
    train_nan = np.where(d["m_train"], d["x_train"], np.nan)
    mean_train = impute_baseline("mean", train_nan)
    mean_test = np.where(d["m_test"], d["x_test"], np.nanmean(train_nan, axis=0))
    for seed in seeds:
        pred = _mlp(seed).fit(mean_train, d["y_train"]).predict(mean_test)
        rows.append(_row(name, seed, "mean-imputed", d, pred, mean_train, mean_test, 0.0))
        pred = _mlp(seed).fit(d["x_train"], d["y_train"]).predict(d["x_test"])
        rows.append(_row(name, seed, "oracle", d, pred, None, None, 0.0))
    return rows


def _row(name, seed, method, d, pred, imp_train, imp_test, seconds) -> dict:
    return {"dataset": name, "seed": seed, "method": method,
            "test_mse": float(np.mean((pred - d["y_test"]) ** 2)),
            "rmse_train": np.nan if imp_train is None else
            rmse_missing(d["x_train"], imp_train, d["m_train"]),
            "rmse_test": np.nan if imp_test is None else
            rmse_missing(d["x_test"], imp_test, d["m_test"]),
            "train_seconds": seconds}


def summary(runs: pd.DataFrame) -> str:
    lines = ["| data set | method | test MSE of y | imputation RMSE, train rows | "
             "imputation RMSE, test rows |", "|---|---|---|---|---|"]
    for (name, method), part in runs.groupby(["dataset", "method"], sort=False):
        cells = [interval(part[c]) if part[c].notna().all() else "-"
                 for c in ("test_mse", "rmse_train", "rmse_test")]
        lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences, joint - two-stage (same seeds and splits), mean "
              "[95% interval]:", "", "| data set | test MSE | RMSE train | RMSE test |",
              "|---|---|---|---|"]
    for name, part in runs.groupby("dataset", sort=False):
        wide = part.pivot(index="seed", columns="method")
        diffs = [interval(wide[(c, "joint")] - wide[(c, "two-stage")])
                 for c in ("test_mse", "rmse_train", "rmse_test")]
        lines.append(f"| {name} | " + " | ".join(diffs) + " |")
    return "\n".join(lines) + "\n"


def _append(path: Path, rows: list[dict]) -> None:
    append_rows(path, rows)
    print(f"{rows[0]['dataset']}: done", flush=True)


def target_datasets(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """The names in a --datasets option, each checked to have a target (else exit 2)."""
    names = split_list(text)
    for name in names:
        spec = DATASETS.get(name)
        if spec is None or spec.target is None:
            parser.error(f"--datasets: {name!r} has no target; ones that do: "
                         f"{sorted(k for k, v in DATASETS.items() if v.target)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.supervised",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="red,concrete",
                        help="comma-separated: red, white (y = quality), concrete (y = strength)")
    add_protocol_options(parser, unit="method")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="seed of the 80/20 train/test split")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: cuda if available)")
    add_engine_options(parser)
    parser.add_argument("--out", required=True, help="output folder: runs.csv, summary.md")
    args = parser.parse_args(argv)
    names = target_datasets(parser, args.datasets)
    out = Path(args.out)
    check_settings(out, {"seeds": args.seeds, "iterations": args.iterations,
                         "impute_samples": args.impute_samples,
                         "split_seed": args.split_seed}, EARLIER_SETTINGS)
    log_command(out, "notmiwae.experiments.supervised", argv)
    runs_path = out / "runs.csv"
    done = pd.read_csv(runs_path) if runs_path.exists() else pd.DataFrame()
    todo = [n for n in names if done.empty or n not in set(done["dataset"])]
    job_args = [(n, list(range(args.seeds)), args.iterations, args.impute_samples,
                 args.split_seed, args.device) for n in todo]
    for _, rows in run_jobs(run_dataset, job_args, args, label=lambda job: job[0],
                            device=args.device):
        _append(runs_path, rows)
    done = pd.read_csv(runs_path)
    text = summary(done[done["dataset"].isin(names)])
    (out / "summary.md").write_text(
        f"Joint supervision, {args.seeds} seeds, {args.iterations} iterations, "
        f"L = {args.impute_samples}; missing model {MISSING}.\n\n{text}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
