"""Why does the joint model predict worse than two stages on red wine? One trained joint
model, taken apart.

    python -m notmiwae.experiments.joint_diagnosis --datasets red,concrete --seed 0 \
        --iterations 100000 --impute-samples 10000 --out results/supervised/diagnosis

The split, mechanism and training of ``notmiwae.experiments.supervised``'s joint method, for one
seed, trained alone rather than as one of several replicas: the same run up to
floating-point rounding, which over 100,000 steps can carry it to another optimum, so
``mse_joint`` need not equal that experiment's number for the seed. Per data set:

- ``mse_joint``: test MSE of y from E[y | x^o, s] = sum_l w~_l f_psi(x^o, x^m_l);
- ``mse_f_complete``: f_psi at the complete test features (the regressor given the truth);
- ``mse_f_imputed``: f_psi at the model's own imputations of the test rows;
- ``mse_f_complete_train``: f_psi at the complete training features;
- ``sigma``: the learned scale of p(y | x), in standard deviations of y;
- ``rmse_train_given_y`` / ``rmse_train``: imputation RMSE of the training rows (the
  paper's "mean" estimator) with p(y | x) in the weights and without it;
- ``slope_hidden_f`` / ``slope_kept_f``: how steeply f_psi changes with the features,
  mean |df/dx_j| (central differences, step 0.1, at the complete training features, y
  in standard deviations) over the columns the mechanism hides (the first floor(D/2))
  and over those it keeps; ``slope_hidden_mlp`` / ``slope_kept_mlp``: the same for the
  MLP trained on the complete features (the experiment's oracle), for scale;
- ``ess_train`` / ``ess_train_given_y``: Kish's effective sample size of the importance
  weights, (sum_l w_l)^2 / sum_l w_l^2, as a fraction of L, averaged over the training
  rows with a missing entry, without and with p(y | x) in the weights: how strongly
  knowing y concentrates the weights on a few draws of (z, x^m); ``ess_k_train`` /
  ``ess_k_train_given_y``: the same with L = K = 20 draws, as in a training step;
- ``overlap_train`` / ``overlap_k_train``: sum_l min(w~_l, w~^y_l), how much of the
  weight stays on the same draws when p(y | x) enters (1: y moves nothing), averaged over
  the same rows, with L and with K draws;
- ``mse_joint_train``, ``mse_f_imputed_train``: the training rows' counterparts of
  ``mse_joint`` and ``mse_f_imputed``; ``mse_joint_train_given_y``: the same with
  p(y | x) in the weights, E[f(x^o, x^m) | x^o, s, y] = sum_l w~^y_l f(x^o, x^m_l): how
  well the draws that y favours fit it (what training rewards); ``mse_mlp_complete_train``
  / ``mse_mlp_complete``: the complete-data MLP on its training rows / the test rows, for
  scale (how far the training rows' error may fall below the test rows');
- ``rmse_train_sample_given_y`` / ``rmse_train_sample``: as ``rmse_train_given_y`` /
  ``rmse_train`` with the "sample" estimator, sum_l w~_l x^m_l, which sees y through the
  draws x^m_l themselves (the "mean" estimator averages decoder means E[x^m | z_l] and sees
  y only through the z_l it favours).

MSEs are on y's original scale; RMSEs on the standardised feature scale.

With ``--curve-every N`` it writes ``curve.csv`` instead: the same joint model's
prediction error on the test and the training rows (``mse_joint``, ``mse_joint_train``,
weights without y, L = ``--impute-samples``), its noise scale ``sigma`` and its training
bound (mean of the last 1,000 iterations) every N iterations. Each checkpoint continues
the previous one from a snapshot (in OUT/snapshots/, also how a stopped curve resumes),
so the last row's model is the uninterrupted run's.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notmiwae.inference.cli import positive_int
from notmiwae.inference.device import process_pool, program_device
from notmiwae.inference.imputation import (
    effective_sample_size,
    impute,
    predict_target,
    weight_overlap,
)
from notmiwae.models.program import NotMIWAE

from .metrics import rmse_missing
from .outputs import append_rows, log_command
from .supervised import (
    _mlp,
    _tensors,
    fit_generative,
    predict_y,
    split,
    standardised_target,
    target_datasets,
)


def diagnose(name: str, seed: int, iterations: int, samples: int,
             split_seed: int = 0) -> dict:
    """Train the joint model for one seed and return the quantities listed above."""
    d = split(name, split_seed)
    xt, mt = _tensors(d["x_train"], d["m_train"])
    xe, me = _tensors(d["x_test"], d["m_test"])
    y_std = standardised_target(d)
    result = fit_generative(d, True, [seed], iterations)
    program = result.program
    pred = predict_target(program, xe, me, samples, seed=seed).cpu().numpy()
    imp_test = impute(program, xe, me, samples, seed=seed).cpu().numpy()
    imp_train = impute(program, xt, mt, samples, seed=seed).cpu().numpy()
    imp_train_y = impute(program, xt, mt, samples, seed=seed, y=y_std).cpu().numpy()

    incomplete = ~mt.all(1)
    k = result.train_config.num_particles  # the K of the training bound
    ess = {f"ess{size}_train{suffix}": float(
        effective_sample_size(program, xt, mt, n, seed=seed, y=given)[incomplete].mean() / n)
        for size, n in (("", samples), ("_k", k))
        for suffix, given in (("", None), ("_given_y", y_std))}
    overlap = {f"overlap{size}_train": float(
        weight_overlap(program, xt, mt, n, seed=seed, y=y_std)[incomplete].mean())
        for size, n in (("", samples), ("_k", k))}
    pred_train, pred_train_y = (predict_target(program, xt, mt, samples, seed=seed, y=given)
                                .cpu().numpy() for given in (None, y_std))
    imp_sample, imp_sample_y = (impute(program, xt, mt, samples, "sample", seed=seed, y=given)
                                .cpu().numpy() for given in (None, y_std))

    def mse(y_hat_std: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((y_hat_std * d["y_sd"] + d["y_mean"] - y) ** 2))

    mlp = _mlp(seed).fit(d["x_train"], d["y_train"])
    hidden = np.arange(xt.shape[1]) < xt.shape[1] // 2
    slope_f = _slopes(lambda x: _f(program, x), d["x_train"])
    slope_mlp = _slopes(lambda x: mlp.predict(x) / d["y_sd"], d["x_train"])

    return {"dataset": name, "seed": seed, "iterations": iterations,
            "mse_joint": mse(pred, d["y_test"]),
            "mse_f_complete": mse(_f(program, d["x_test"]), d["y_test"]),
            "mse_f_imputed": mse(_f(program, imp_test), d["y_test"]),
            "mse_f_complete_train": mse(_f(program, d["x_train"]), d["y_train"]),
            "mse_joint_train": mse(pred_train, d["y_train"]),
            "mse_f_imputed_train": mse(_f(program, imp_train), d["y_train"]),
            "mse_joint_train_given_y": mse(pred_train_y, d["y_train"]),
            "mse_mlp_complete_train": float(np.mean((mlp.predict(d["x_train"])
                                                     - d["y_train"]) ** 2)),
            "mse_mlp_complete": float(np.mean((mlp.predict(d["x_test"]) - d["y_test"]) ** 2)),
            "var_y_test": float(np.var(d["y_test"])),
            "sigma": _sigma(program, xt),
            "rmse_train_given_y": rmse_missing(d["x_train"], imp_train_y, d["m_train"]),
            "rmse_train": rmse_missing(d["x_train"], imp_train, d["m_train"]),
            "rmse_train_sample_given_y": rmse_missing(d["x_train"], imp_sample_y, d["m_train"]),
            "rmse_train_sample": rmse_missing(d["x_train"], imp_sample, d["m_train"]),
            "slope_hidden_f": slope_f[hidden].mean(), "slope_kept_f": slope_f[~hidden].mean(),
            "slope_hidden_mlp": slope_mlp[hidden].mean(),
            "slope_kept_mlp": slope_mlp[~hidden].mean(), **ess, **overlap}


def learning_curve(name: str, seed: int, iterations: int, every: int, samples: int,
                   split_seed: int, snapshot: Path, done: set[int]) -> Iterator[dict]:
    """One row per ``every`` iterations (those in ``done`` skipped): the joint model's
    prediction error on the test and the training rows along its training."""
    d = split(name, split_seed)
    xt, mt = _tensors(d["x_train"], d["m_train"])
    xe, me = _tensors(d["x_test"], d["m_test"])
    for it in range(every, iterations + 1, every):
        if it in done:
            continue
        result = fit_generative(d, True, [seed], it, snapshot=snapshot)
        program = result.program
        predicted = {part: predict_y(program, x, m, samples, seed, d)
                     for part, x, m in (("test", xe, me), ("train", xt, mt))}
        yield {"dataset": name, "seed": seed, "iteration": it, "impute_samples": samples,
               "mse_joint": float(np.mean((predicted["test"] - d["y_test"]) ** 2)),
               "mse_joint_train": float(np.mean((predicted["train"] - d["y_train"]) ** 2)),
               "sigma": _sigma(program, xt),
               "bound": float(result.history[max(0, it - 1000):it].mean())}


def _sigma(program: NotMIWAE, x: torch.Tensor) -> float:
    """The learned scale of p(y | x), in standard deviations of y."""
    return float(program.regressor(x[:1].to(program_device(program))).scale[0, 0].detach())


def _slopes(predict, x: np.ndarray, step: float = 0.1) -> np.ndarray:
    """mean over rows of |predict(x + step e_j) - predict(x - step e_j)| / (2 step): (D,)."""
    out = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        shift = np.zeros(x.shape[1])
        shift[j] = step
        out[j] = np.mean(np.abs(predict(x + shift) - predict(x - shift))) / (2 * step)
    return out


@torch.no_grad()
def _f(program: NotMIWAE, x) -> np.ndarray:
    """f_psi(x), the regressor's mean, on the standardised y scale: (N,)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=program_device(program))
    return program.regressor(x).mean[:, 0].cpu().numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.joint_diagnosis",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="red,concrete")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=positive_int, default=100_000)
    parser.add_argument("--impute-samples", type=positive_int, default=10_000)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--jobs", type=positive_int, default=1, help="data sets run in parallel")
    parser.add_argument("--curve-every", type=positive_int, default=None, metavar="N",
                        help="write curve.csv: errors every N iterations (see above)")
    parser.add_argument("--out", required=True,
                        help="output folder: diagnosis.csv (or curve.csv)")
    args = parser.parse_args(argv)
    names = target_datasets(parser, args.datasets)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_command(out, "notmiwae.experiments.joint_diagnosis", argv)
    if args.curve_every:
        return _curves(out, names, args)
    path = out / "diagnosis.csv"
    jobs = [(name, args.seed, args.iterations, args.impute_samples, args.split_seed)
            for name in names]
    if args.jobs > 1 and len(jobs) > 1:
        with process_pool(min(args.jobs, len(jobs))) as pool:
            rows = (f.result() for f in [pool.submit(diagnose, *job) for job in jobs])
            _write(path, rows)
    else:
        _write(path, (diagnose(*job) for job in jobs))
    return 0


def _curves(out: Path, names: list[str], args: argparse.Namespace) -> int:
    """curve.csv, one data set after another, resuming where an earlier run stopped."""
    path = out / "curve.csv"
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(
        columns=["dataset", "seed", "impute_samples", "iteration"])
    for name in names:
        done = set(old.loc[(old["dataset"] == name) & (old["seed"] == args.seed)
                           & (old["impute_samples"] == args.impute_samples), "iteration"])
        snapshot = out / "snapshots" / f"{name}_seed{args.seed}_split{args.split_seed}.pt"
        snapshot.parent.mkdir(exist_ok=True)
        _write(path, learning_curve(name, args.seed, args.iterations, args.curve_every,
                                    args.impute_samples, args.split_seed, snapshot, done))
    return 0


def _write(path: Path, rows) -> None:
    """Append each row to the CSV (in the order of --datasets) as it becomes available."""
    for row in rows:
        append_rows(path, [row])
        print(pd.DataFrame([row]).to_string(index=False), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
