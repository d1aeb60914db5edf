"""Stopping the joint model on validation rows: does it mend red wine?

    python -m notmiwae.experiments.early_stopping --datasets red,concrete --seeds 5 \
        --iterations 100000 --every 5000 --select-samples 1000 --impute-samples 10000 \
        --out results/supervised/early-stopping

Over the paper's 100,000 iterations the joint model of ``notmiwae.experiments.supervised`` overfits
red wine (``results/supervised/diagnosis/curve.csv``). This tries the usual remedy with a
rule that never sees the test rows. The split and mechanism are those of
``notmiwae.experiments.supervised``; a fixed fifth of its training rows (drawn with the split
seed) is set aside as validation rows, and the joint model (seeds 0..S-1 as replicas)
trains on the other four fifths. Every ``--every`` iterations each seed's prediction
MSE of y on the validation rows is measured (E[y | x^o, s], weights without y,
L = ``--select-samples``), and each seed keeps the parameters of its best checkpoint.
Rows of OUT/runs.csv, per data set and seed:

- ``joint-stopped``: the kept parameters (``stop_iteration``, ``validation_mse``);
- ``joint-fit-rows``: the same run's parameters after the last iteration: what the rule
  changes, apart from training on fewer rows.

Columns as in ``notmiwae.experiments.supervised`` (test MSE of y on its original scale,
imputation RMSE of all training rows and of the test rows, L = ``--impute-samples``).
OUT/validation.csv holds every checkpoint's validation MSE. OUT/summary.md sets both
methods beside the joint and two-stage rows of ``--reference`` (that experiment's
runs.csv: same split, same seeds), with paired differences. A stopped run resumes from
OUT/snapshots/ (the training state, and each seed's best parameters so far).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notmiwae.inference.cli import positive_int
from notmiwae.inference.imputation import impute
from notmiwae.models.program import NotMIWAE

from .engines import add_engine_options, run_jobs
from .outputs import append_rows, check_settings, log_command
from .protocol import add_protocol_options
from .report import interval
from .supervised import _row, _tensors, fit_generative, predict_y, split, target_datasets

VALIDATION_FRACTION = 0.2  # of the training rows, as the test rows are of all rows


def set_aside(d: dict, split_seed: int) -> tuple[dict, np.ndarray]:
    """The split ``d`` with its training rows cut to the rows the model fits, and the
    indices (into the training rows) of the validation rows."""
    n = len(d["x_train"])
    order = np.random.default_rng([split_seed, 1]).permutation(n)
    cut = int(VALIDATION_FRACTION * n)
    keep = np.sort(order[cut:])
    fit_part = {**d, "x_train": d["x_train"][keep], "m_train": d["m_train"][keep],
                "y_train": d["y_train"][keep]}
    return fit_part, np.sort(order[:cut])


def validation_mse(program: NotMIWAE, x: torch.Tensor, m: torch.Tensor, y: np.ndarray,
                   samples: int, seed: int, d: dict) -> float:
    """Mean squared error of E[y | x^o, s] on the validation rows (original scale)."""
    return float(np.mean((predict_y(program, x, m, samples, seed, d) - y) ** 2))


def run_dataset(name: str, seeds: list[int], iterations: int, every: int,
                select_samples: int, samples: int, split_seed: int,
                out: Path) -> list[dict]:
    """Train with checkpoints every ``every`` iterations, keep each seed's best one, and
    evaluate it and the last one on the test rows."""
    d = split(name, split_seed)
    fit_part, val = set_aside(d, split_seed)
    xv, mv = _tensors(d["x_train"][val], d["m_train"][val])
    snapshots = out / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    training = snapshots / f"{name}_split{split_seed}_training.pt"
    best_path = snapshots / f"{name}_split{split_seed}_best.pt"
    best = torch.load(best_path, weights_only=True) if best_path.exists() else {
        "iteration": 0, "mse": [np.inf] * len(seeds), "at": [0] * len(seeds),
        "states": [None] * len(seeds)}
    result = None
    for it in range(best["iteration"] + every, iterations + 1, every):
        result = fit_generative(fit_part, True, seeds, it, snapshot=training)
        rows = []
        for r, seed in enumerate(seeds):
            program = result.replica(r)
            mse = validation_mse(program, xv, mv, d["y_train"][val], select_samples, seed, d)
            rows.append({"dataset": name, "seed": seed, "iteration": it,
                         "validation_mse": mse})
            if mse < best["mse"][r]:
                best["mse"][r], best["at"][r] = mse, it
                best["states"][r] = {k: v.detach().clone()
                                     for k, v in program.state_dict().items()}
        best["iteration"] = it
        torch.save(best, best_path)
        _append(out / "validation.csv", rows)
    if result is None:  # resumed after the last checkpoint: the trained state, reloaded
        result = fit_generative(fit_part, True, seeds, iterations, snapshot=training)
    return _evaluate(name, d, seeds, result, best, samples)


def _evaluate(name: str, d: dict, seeds: list[int], result, best: dict,
              samples: int) -> list[dict]:
    xt, mt = _tensors(d["x_train"], d["m_train"])
    xe, me = _tensors(d["x_test"], d["m_test"])
    rows = []
    for r, seed in enumerate(seeds):
        last = result.replica(r)
        stopped = copy.deepcopy(last)
        stopped.load_state_dict(best["states"][r])
        kept = {"joint-stopped": (stopped, best["at"][r], best["mse"][r]),
                "joint-fit-rows": (last, result.train_config.iterations, np.nan)}
        for method, (program, stop, val_mse) in kept.items():
            pred = predict_y(program, xe, me, samples, seed, d)
            imp_train = impute(program, xt, mt, samples, seed=seed).cpu().numpy()
            imp_test = impute(program, xe, me, samples, seed=seed).cpu().numpy()
            rows.append({**_row(name, seed, method, d, pred, imp_train, imp_test,
                                result.seconds / len(seeds)),
                         "stop_iteration": stop, "validation_mse": val_mse})
    return rows


def _append(path: Path, rows: list[dict]) -> None:
    append_rows(path, rows)


def summary(runs: pd.DataFrame, reference: pd.DataFrame) -> str:
    """Means with 95% intervals per method, and paired differences (same seeds)."""
    both = pd.concat([reference[reference["method"].isin(["joint", "two-stage"])
                                & reference["dataset"].isin(runs["dataset"])
                                & reference["seed"].isin(runs["seed"])], runs])
    lines = ["| data set | method | test MSE of y | imputation RMSE, train rows | "
             "imputation RMSE, test rows | stopped at (iterations) |", "|---|---|---|---|---|---|"]
    for (name, method), part in both.groupby(["dataset", "method"], sort=False):
        cells = [interval(part[c]) for c in ("test_mse", "rmse_train", "rmse_test")]
        stop = (", ".join(str(int(v)) for v in part["stop_iteration"])
                if method == "joint-stopped" else "-")
        lines.append(f"| {name} | {method} | " + " | ".join(cells) + f" | {stop} |")
    lines += ["", "Paired differences in test MSE of y (same seeds), mean [95% interval]:",
              "", "| data set | stopped - joint | stopped - two-stage | stopped - fit-rows |",
              "|---|---|---|---|"]
    for name, part in both.groupby("dataset", sort=False):
        wide = part.pivot(index="seed", columns="method", values="test_mse")
        cells = [interval(wide["joint-stopped"] - wide[m]) if m in wide else "-"
                 for m in ("joint", "two-stage", "joint-fit-rows")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.early_stopping",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="red,concrete")
    add_protocol_options(parser, unit="method")
    add_engine_options(parser)
    parser.add_argument("--every", type=positive_int, default=5000,
                        help="iterations between checkpoints")
    parser.add_argument("--select-samples", type=positive_int, default=1000,
                        help="importance samples for the validation MSE")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--reference", default="results/supervised/runs.csv",
                        help="notmiwae.experiments.supervised's runs.csv, for the summary")
    parser.add_argument("--out", required=True,
                        help="output folder: runs.csv, validation.csv, summary.md")
    args = parser.parse_args(argv)
    names = target_datasets(parser, args.datasets)
    if args.iterations % args.every:
        parser.error("--iterations must be a multiple of --every")
    torch.set_num_threads(1)
    out = Path(args.out)
    check_settings(out, {k: getattr(args, k) for k in (
        "seeds", "iterations", "every", "select_samples", "impute_samples", "split_seed")}, {})
    log_command(out, "notmiwae.experiments.early_stopping", argv)
    runs_path = out / "runs.csv"
    done = set(pd.read_csv(runs_path)["dataset"]) if runs_path.exists() else set()
    jobs = [(name, list(range(args.seeds)), args.iterations, args.every,
             args.select_samples, args.impute_samples, args.split_seed, out.resolve())
            for name in names if name not in done]
    for _, rows in run_jobs(run_dataset, jobs, args, label=lambda job: job[0]):
        _append(runs_path, rows)
    runs = pd.read_csv(runs_path)
    runs = runs[runs["dataset"].isin(names)]
    reference = pd.read_csv(args.reference) if Path(args.reference).exists() else runs[:0]
    text = summary(runs, reference)
    (out / "summary.md").write_text(
        f"Joint model stopped on validation rows ({VALIDATION_FRACTION:.0%} of the training "
        f"rows), {args.seeds} seeds, checkpoints every {args.every} of {args.iterations} "
        f"iterations, validation L = {args.select_samples}, test L = "
        f"{args.impute_samples}; reference: {args.reference}.\n\n{text}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
