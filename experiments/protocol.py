"""One run of the paper's UCI protocol: data, MNAR mask, a model, its imputation RMSE."""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from notmiwae.inference.cli import positive_int
from notmiwae.inference.imputation import impute
from notmiwae.inference.training import FitResult, TrainConfig, fit
from notmiwae.models.registry import config_from_name

from .baselines import BASELINES, impute_baseline
from .datasets import DATASETS, load_dataset
from .mechanisms import paper_mnar, standardise
from .metrics import mask_accuracy, rmse_missing


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    model: str
    seed: int
    iterations: int = 100_000
    impute_samples: int = 10_000
    offset: float = 0.0
    batch_size: int = 16
    num_particles: int = 20
    init: str = "torch"

    def key(self) -> tuple:
        """What identifies a result within one output folder; baselines ignore the training
        settings. Batch size, K and init are fixed per folder (``notmiwae.experiments.uci``)."""
        trained = self.model not in BASELINES
        return (self.dataset, self.model, int(self.seed),
                int(self.iterations) if trained else 0,
                int(self.impute_samples) if trained else 0, float(self.offset))


def split_list(text: str) -> list[str]:
    """A comma-separated option as a list, spaces and empty parts dropped: 'a, b,,c'."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_protocol_options(parser: argparse.ArgumentParser, unit: str = "model",
                         jobs: bool = True) -> None:
    """--seeds, --iterations, --impute-samples and (``jobs``) --jobs, shared by the
    experiment runners."""
    parser.add_argument("--seeds", type=positive_int, default=5,
                        help=f"runs per {unit}: seeds 0..N-1")
    parser.add_argument("--iterations", type=positive_int, default=100_000,
                        help="training steps (the paper: 100,000)")
    parser.add_argument("--impute-samples", type=positive_int, default=10_000,
                        help="importance samples L for imputation (the paper: 10,000)")
    if jobs:
        parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                            help="parallel processes, one thread each (default: one per "
                                 "core)")


def check_names(parser: argparse.ArgumentParser, datasets: list[str], models: list[str],
                trained_only: bool = False) -> None:
    """``parser.error`` on an unknown data set or model name (or, with ``trained_only``,
    a baseline), before anything runs."""
    for name in datasets:
        if name not in DATASETS:
            parser.error(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    for name in models:
        if name in BASELINES:
            if trained_only:
                parser.error(f"{name!r} is a baseline; this describes trained models only")
            continue
        try:
            config_from_name(name, n_features=2)
        except ValueError as err:
            parser.error(str(err))


def prepare(dataset: str, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised complete data and the paper's MNAR mask (True = observed)."""
    x = standardise(load_dataset(dataset).to_numpy())
    return x, paper_mnar(x, offset)


def group_replicas(specs: list[RunSpec], max_replicas: int) -> list[list[RunSpec]]:
    """Runs that differ only by consecutive seeds, in groups trained as one program."""
    groups: list[list[RunSpec]] = []
    for spec in specs:
        last = groups[-1][-1] if groups else None
        if (last is not None and spec.model not in BASELINES and len(groups[-1]) < max_replicas
                and replace(spec, seed=last.seed + 1) == spec
                and replace(last, seed=spec.seed) == spec):
            groups[-1].append(spec)
        else:
            groups.append([spec])
    return groups


def group_label(job: tuple[list[RunSpec]]) -> str:
    """'banknote miwae seeds 0-4' for a job of one group of runs."""
    group = job[0]
    seeds = (f"seed {group[0].seed}" if len(group) == 1
             else f"seeds {group[0].seed}-{group[-1].seed}")
    return f"{group[0].dataset} {group[0].model} {seeds}"


def group_weight(job: tuple[list[RunSpec]]) -> float:
    """A group's share of the work: its runs' iterations (a baseline's counts as none)."""
    group = job[0]
    return 0.0 if group[0].model in BASELINES else float(group[0].iterations * len(group))


def snapshot_path(folder: str | Path, specs: list[RunSpec]) -> Path:
    """Where a group's training snapshot lives while it trains (see ``run_group``). The
    snapshot itself records the data and settings, and refuses to resume other ones."""
    first, last = specs[0], specs[-1]
    model = re.sub(r"[^\w.-]", "_", first.model)  # notmiwae:linear -> notmiwae_linear
    name = (f"{first.dataset}_{model}_seeds{first.seed}-{last.seed}"
            f"_it{first.iterations}_offset{first.offset:g}.pt")
    return Path(folder) / name


def run_group(specs: list[RunSpec], device: str | None = None, progress: bool = False,
              snapshots: str | Path | None = None, compile: bool | str = "auto",
              snapshot_every: int = 5000, parts: dict | None = None) -> list[dict]:
    """Train the group's seeds as replicas of one program (or apply a baseline), impute
    the training rows with each replica and score them, as the paper does.

    ``snapshots``: a folder for the training snapshot (:func:`snapshot_path`), so that a
    group stopped midway resumes where it was; the caller deletes it once the rows are kept.
    ``compile``: train with the compiled step (``TrainConfig.compile``) and impute with
    compiled weights (``impute``'s "auto"); the snapshot is saved every
    ``snapshot_every`` iterations. ``parts`` as for :func:`train_group`.
    """
    first = specs[0]
    x, mask = prepare(first.dataset, first.offset)
    rows = [{"dataset": s.dataset, "model": s.model, "seed": s.seed,
             "iterations": s.iterations, "impute_samples": s.impute_samples,
             "offset": s.offset, "missing_rate": float(1 - mask.mean()),
             "replicas": len(specs)} for s in specs]
    if first.model in BASELINES:
        start = time.perf_counter()
        x_imp = impute_baseline(first.model, np.where(mask, x, np.nan), first.seed)
        rows[0].update(train_seconds=time.perf_counter() - start, impute_seconds=0.0,
                       final_bound=float("nan"), iterations=0, impute_samples=0,
                       mask_accuracy=float("nan"), mask_accuracy_incomplete=float("nan"),
                       rmse=rmse_missing(x, x_imp, mask))
        return rows
    runs = imputed_runs(specs, device, progress, snapshots, compile, snapshot_every, parts)
    for row, (x_imp, facts) in zip(rows, runs, strict=True):
        row.update(facts, rmse=rmse_missing(x, x_imp, mask))
    return rows


def train_group(specs: list[RunSpec], device: str | None = None, progress: bool = False,
                snapshots: str | Path | None = None, compile: bool | str = "auto",
                snapshot_every: int = 5000, parts: dict | None = None,
                ) -> tuple[FitResult, torch.Tensor, torch.Tensor]:
    """Train a group of runs of one model as replicas, resuming from (and saving to) its
    snapshot in ``snapshots``; a snapshot of the finished training is reloaded without
    training. ``parts``: fields of the model's :class:`ModelConfig` to replace (e.g.
    ``{"decoder": "a_registered_name"}``). Returns the fit and the data it trained on:
    x (missing entries 0) and mask, float32 and bool, on the standardised scale."""
    first = specs[0]
    x, mask = prepare(first.dataset, first.offset)
    config = config_from_name(first.model, n_features=x.shape[1], **(parts or {}))
    xt = torch.tensor(np.where(mask, x, 0.0), dtype=torch.float32)
    mt = torch.tensor(mask)
    train = TrainConfig(iterations=first.iterations, batch_size=first.batch_size,
                        num_particles=first.num_particles, seed=first.seed, init=first.init,
                        compile=compile)
    result = fit(config, xt, mt, train, device=device, progress=progress,
                 replicas=len(specs),
                 snapshot=None if snapshots is None else snapshot_path(snapshots, specs),
                 snapshot_every=snapshot_every)
    return result, xt, mt


def imputed_runs(specs: list[RunSpec], device: str | None = None, progress: bool = False,
                 snapshots: str | Path | None = None, compile: bool | str = "auto",
                 snapshot_every: int = 5000, parts: dict | None = None,
                 ) -> Iterator[tuple[np.ndarray, dict]]:
    """Train a group of runs of one model as replicas (:func:`train_group`), then yield
    each run's imputed training rows (standardised scale) with its train_seconds
    (compile_seconds of them), impute_seconds, final_bound (mean bound of the last 1,000
    iterations), mask_accuracy and mask_accuracy_incomplete (:func:`~.metrics.mask_accuracy`
    over all columns, and over those with a missing entry), whether the step was
    compiled and the iteration training resumed at (0: it did not), in the order of
    ``specs``. ``parts`` as for :func:`train_group`."""
    result, xt, mt = train_group(specs, device, progress, snapshots, compile, snapshot_every,
                                 parts)
    x, mask = prepare(specs[0].dataset, specs[0].offset)
    history = result.history.reshape(len(result.history), -1)
    for r, spec in enumerate(specs):
        start = time.perf_counter()
        program = result.replica(r)
        x_imp = impute(program, xt, mt, spec.impute_samples, seed=spec.seed,
                       compile=compile)
        yield x_imp.cpu().double().numpy(), {
            "train_seconds": result.seconds / len(specs),
            "compile_seconds": result.compile_seconds / len(specs),
            "impute_seconds": time.perf_counter() - start,
            "final_bound": float(history[-min(1000, len(history)):, r].mean()),
            "mask_accuracy": mask_accuracy(program, x, mask),
            "mask_accuracy_incomplete": mask_accuracy(program, x, mask, incomplete_only=True),
            "compiled": result.train_config.compiles(),
            "resumed_from": result.resumed_from}
