"""Are multiple imputations calibrated under MNAR? Coverage, width and CRPS on the
paper's protocol.

    python -m notmiwae.experiments.coverage --datasets banknote --seeds 5 \
        --iterations 100000 --impute-samples 10000 --draws 100 --init glorot \
        --ensembles --trained results/uci/trained --out results/coverage

``--particles K`` trains with K importance samples in the bound (the paper: 20).

Per data set, model and seed, on the paper's data and mechanism (standardised scale):
m = ``--draws`` imputations of every missing entry (``multiple_impute``; MICE:
scikit-learn's IterativeImputer with ``sample_posterior=True``, m imputed data sets),
then, over the missing entries, the coverage of the true values by the central 50%, 90%
and 95% intervals of the draws, their mean width and the mean CRPS
(``notmiwae.experiments.calibration``). Also per column the pooled estimate of its mean
by Rubin's rules and whether its 95% interval covers the complete-data mean (0 on this
scale), and for the trained models the RMSE of the single imputation and the
distribution of each row's effective sample size.

Trained groups (seeds as replicas, as ``notmiwae.experiments.uci``) are reloaded from
``--trained`` when a group of the same settings finished there (the uci runner keeps
them in OUT/trained/), else trained and kept there. ``--ensembles``: each group's R
replicas also impute as one ensemble, pooled and equal (``notmiwae.inference.
imputation``), with L samples from each replica; its rows have ``ensemble`` set and
``seed`` the group's first.

``--sampler nuts`` draws the m imputations of each single run by NUTS on the model's own
posterior p(z, x^m | x^o, s) instead (``notmiwae.inference.posterior_sampling``; m kept
draws, every ``--thin``-th after ``--warmup``): where the importance weights are poor,
this says how much of the coverage the sampler costs. Its RMSE is that of the draws'
mean, and runs.csv records the chain's effective sample size and R-hat for x^m.

Writes OUT/summary.csv (dataset, model, ensemble, seed, nominal, coverage, width, crps,
rmse, ...), OUT/means.csv (the pooled column means), OUT/runs.csv (per run: RMSE, CRPS,
ESS quantiles, seconds); ``notmiwae.experiments.coverage_report`` renders README.md and the
figure from them. Runs already in runs.csv are skipped.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from notmiwae.inference.cli import positive_int
from notmiwae.inference.imputation import LowEffectiveSampleSize, impute, multiple_impute
from notmiwae.inference.posterior_sampling import nuts_draws
from notmiwae.inference.tables import write_csv

from .calibration import crps, interval_scores, pooled_column_means
from .engines import compile_setting
from .metrics import rmse_missing
from .outputs import append_rows, check_settings, log_command
from .protocol import (
    RunSpec,
    add_protocol_options,
    check_names,
    group_replicas,
    prepare,
    snapshot_path,
    split_list,
    train_group,
)

SINGLE = "none"  # the ``ensemble`` of a single run
MODELS = ("notmiwae:selfmasking_known,notmiwae:selfmasking,notmiwae-ppca:selfmasking,"
          "miwae,mice")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m notmiwae.experiments.coverage",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="banknote", help="comma-separated data sets")
    p.add_argument("--models", default=MODELS,
                   help="comma-separated trained models (names as notmiwae.experiments.uci) "
                        "or mice")
    add_protocol_options(p, jobs=False)  # one process: the runs follow each other
    p.add_argument("--draws", type=positive_int, default=100,
                   help="imputations m per missing entry (default 100)")
    p.add_argument("--init", default="glorot", choices=("torch", "glorot", "glorot-missing"),
                   help="initialisation (default glorot, the paper's, as results/uci)")
    p.add_argument("--particles", type=positive_int, default=20,
                   help="importance samples K in the training bound (default 20, the paper's)")
    p.add_argument("--ensembles", action="store_true",
                   help="also impute with each group's replicas as one ensemble")
    p.add_argument("--trained", help="a folder of kept groups to reuse first, e.g. "
                   "results/uci/trained (groups trained here are kept in OUT/trained)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="the compiled training step and imputation (default: training from "
                   "5,000 iterations on, imputation from 20 million row-samples on)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--sampler", default="sir", choices=("sir", "nuts"),
                   help="how the m imputations are drawn: sir, by importance sampling with "
                        "L samples (default); nuts, by NUTS on the model's own posterior "
                        "(notmiwae.inference.posterior_sampling; single runs only)")
    p.add_argument("--warmup", type=positive_int, default=400,
                   help="with --sampler nuts: warm-up iterations (default 400)")
    p.add_argument("--thin", type=positive_int, default=5,
                   help="with --sampler nuts: keep every THIN-th draw (default 5)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    if args.draws < 2:
        p.error("--draws must be at least 2 (Rubin's rules pool two or more imputations)")
    if args.sampler == "nuts" and args.ensembles:
        p.error("--sampler nuts draws from single runs; leave out --ensembles")
    args.datasets, args.models = split_list(args.datasets), split_list(args.models)
    check_names(p, args.datasets, [m for m in args.models if m != "mice"], trained_only=True)
    return args


def score(x: np.ndarray, mask: np.ndarray, draws: np.ndarray, key: dict) -> tuple[
        list[dict], list[dict], dict]:
    """Rows of summary.csv and means.csv, and the run's facts, for draws (m, N, D) of the
    standardised data x (mask True = observed)."""
    missing = ~mask
    entry_draws, truth = draws[:, missing], x[missing]
    mean_crps = float(crps(entry_draws, truth).mean())
    summary = [{**key, **s, "crps": mean_crps} for s in interval_scores(entry_draws, truth)]
    means = [{**key, **c, "truth": float(x[:, c["column"]].mean()),
              "covers": bool(c["lo"] <= x[:, c["column"]].mean() <= c["hi"])}
             for c in pooled_column_means(draws)]
    return summary, means, {**key, "crps": mean_crps}


def mice_draws(x: np.ndarray, mask: np.ndarray, m: int, seed: int) -> np.ndarray:
    """m imputed data sets from MICE with posterior sampling (the paper's MICE settings,
    ``max_iter=10``), seeds seed * m + i."""
    x_nan = np.where(mask, x, np.nan)
    return np.stack([IterativeImputer(max_iter=10, sample_posterior=True,
                                      random_state=seed * m + i).fit_transform(x_nan)
                     for i in range(m)])


def trained(specs: list[RunSpec], args: argparse.Namespace, folders: list[Path]):
    """The group trained, from the first of ``folders`` whose kept state of it has these
    settings (reloaded, not trained again), else trained and kept in the last."""
    for folder in folders[:-1]:
        if not snapshot_path(folder, specs).exists():  # nothing kept there: train nothing
            continue  # into another study's folder
        try:
            return train_group(specs, args.device, False, folder, compile_setting(args))
        except ValueError as err:  # kept with other settings (init, batch, K, device)
            print(f"not reusing {folder}: {err}", flush=True)
    return train_group(specs, args.device, False, folders[-1], compile_setting(args))


def trained_rows(specs: list[RunSpec], args: argparse.Namespace, folders: list[Path],
                 seen: set) -> Iterator[tuple[dict, np.ndarray, dict]]:
    """Yield (key, draws (m, N, D), facts) per run of a trained group not yet ``seen``,
    then, with --ensembles, for its pooled and equal ensembles."""
    x, mask = prepare(specs[0].dataset)
    result, xt, mt = trained(specs, args, folders)
    programs = [result.replica(r) for r in range(len(specs))]
    members = [(spec, [program], SINGLE) for spec, program in zip(specs, programs, strict=True)]
    if args.ensembles and len(specs) > 1:
        members += [(specs[0], programs, how) for how in ("pooled", "equal")]
    for spec, group, how in members:
        if (spec.dataset, spec.model, how, spec.seed) in seen:
            continue
        if args.sampler == "nuts":
            yield _nuts_row(spec, group[0], xt, mt, x, mask, args, result.seconds / len(specs))
            continue
        start = time.perf_counter()
        weighting = "pooled" if how == SINGLE else how
        compiled = compile_setting(args)  # "auto": by the imputation's size
        with warnings.catch_warnings():  # recorded instead: ess_below_m
            warnings.simplefilter("ignore", LowEffectiveSampleSize)
            draws, ess = multiple_impute(group, xt, mt, args.draws, spec.impute_samples,
                                         seed=spec.seed, return_ess=True,
                                         ensemble=weighting, compile=compiled)
        single = impute(group, xt, mt, spec.impute_samples, seed=spec.seed,
                        ensemble=weighting, compile=compiled)
        rows = ess[~mt.all(1)].cpu().double().numpy()  # rows with something to impute
        key = {"dataset": spec.dataset, "model": spec.model, "ensemble": how,
               "seed": spec.seed, "replicas": len(group)}
        yield key, draws.cpu().double().numpy(), {
            "rmse": rmse_missing(x, single.cpu().double().numpy(), mask),
            "ess_min": float(rows.min()), "ess_p10": float(np.quantile(rows, 0.1)),
            "ess_median": float(np.median(rows)),
            "ess_below_m": float(np.mean(rows < args.draws)),
            "impute_seconds": time.perf_counter() - start,
            "train_seconds": result.seconds / len(specs)}


def _nuts_row(spec: RunSpec, program, xt: torch.Tensor, mt: torch.Tensor, x: np.ndarray,
              mask: np.ndarray, args: argparse.Namespace, train_seconds: float
              ) -> tuple[dict, np.ndarray, dict]:
    """A single run's m draws by NUTS, its RMSE (of the draws' mean, the posterior mean)
    and the chain's diagnostics for x^m."""
    start = time.perf_counter()
    draws, diagnostics = nuts_draws(program, xt, mt, args.draws, args.warmup, args.thin,
                                    seed=spec.seed)
    draws = draws.cpu().double().numpy()
    key = {"dataset": spec.dataset, "model": spec.model, "ensemble": SINGLE,
           "seed": spec.seed, "replicas": 1}
    chain = diagnostics["x_missing"]
    return key, draws, {"rmse": rmse_missing(x, draws.mean(0), mask),
                        "n_eff_median": chain["n_eff_median"],
                        "n_eff_p10": chain["n_eff_p10"], "r_hat_max": chain["r_hat_max"],
                        "impute_seconds": time.perf_counter() - start,
                        "train_seconds": train_seconds}


def run(args: argparse.Namespace) -> None:
    """Score every (data set, model, seed) and ensemble not yet in OUT/runs.csv."""
    out = Path(args.out)
    folders = [out / "trained"]  # OUT/trained last: where groups trained here are kept
    if args.trained and Path(args.trained).resolve() != folders[0].resolve():
        folders.insert(0, Path(args.trained))
    seen = _finished(out)
    common = {"iterations": args.iterations, "impute_samples": args.impute_samples,
              "draws": args.draws}
    for dataset in args.datasets:
        x, mask = prepare(dataset)
        for model in args.models:
            if model == "mice":
                for seed in range(args.seeds):
                    if (dataset, model, SINGLE, seed) in seen:
                        continue
                    start = time.perf_counter()
                    draws = mice_draws(x, mask, args.draws, seed)
                    key = {"dataset": dataset, "model": model, "ensemble": SINGLE,
                           "seed": seed, "replicas": 1}
                    facts = {"rmse": rmse_missing(x, draws.mean(0), mask),
                             "impute_seconds": time.perf_counter() - start}
                    _keep(out, x, mask, draws, key,
                          {**facts, **common, "iterations": 0, "impute_samples": 0})
                continue
            specs = [RunSpec(dataset, model, s, args.iterations, args.impute_samples,
                             init=args.init, num_particles=args.particles)
                     for s in range(args.seeds)]
            wanted = [(dataset, model, SINGLE, s) for s in range(args.seeds)]
            if args.ensembles and args.seeds > 1:
                wanted += [(dataset, model, how, 0) for how in ("pooled", "equal")]
            if all(w in seen for w in wanted):
                continue
            for group in group_replicas(specs, args.seeds):
                for key, draws, facts in trained_rows(group, args, folders, seen):
                    _keep(out, x, mask, draws, key, {**facts, **common})
                    print(f"{dataset} {model} {key['ensemble']} seed {key['seed']}: "
                          f"RMSE {facts['rmse']:.3f}", flush=True)


KEY = ["dataset", "model", "ensemble", "seed"]


def _finished(out: Path) -> set:
    """The keys of the runs in OUT/runs.csv. Rows of summary.csv and means.csv that a run
    stopped before its runs.csv row left behind are dropped (it runs again)."""
    if not (out / "runs.csv").exists():
        return set()
    done = pd.read_csv(out / "runs.csv")
    keys = set(zip(*(done[k] for k in KEY), strict=True))
    for name in ("summary.csv", "means.csv"):
        path = out / name
        if path.exists():
            rows = pd.read_csv(path)
            kept = rows[[k in keys for k in zip(*(rows[c] for c in KEY), strict=True)]]
            if len(kept) < len(rows):
                write_csv(kept, path, index=False)
    return keys


def _keep(out: Path, x: np.ndarray, mask: np.ndarray, draws: np.ndarray, key: dict,
          facts: dict) -> None:
    """Append the run's summary, means and facts (runs.csv last: it marks the run done)."""
    summary, means, run_facts = score(x, mask, draws, key)
    for row in summary:
        row.update(facts)
    append_rows(out / "summary.csv", summary)
    append_rows(out / "means.csv", means)
    append_rows(out / "runs.csv", [{**run_facts, **facts}])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    sampler = ({"sampler": "sir"} if args.sampler == "sir" else
               {"sampler": "nuts", "warmup": args.warmup, "thin": args.thin})
    check_settings(out, {"iterations": args.iterations, "impute_samples": args.impute_samples,
                         "draws": args.draws, "init": args.init, "particles": args.particles,
                         **sampler},
                   {"particles": 20, "sampler": "sir"})  # folders begun before these options
    log_command(out, "notmiwae.experiments.coverage", argv)
    torch.set_num_threads(1)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
