"""One run of the paper's UCI protocol: data, MNAR mask, a model, its imputation RMSE."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from inference.imputation import impute
from inference.training import TrainConfig, fit
from models.registry import config_from_name

from .baselines import BASELINES, impute_baseline
from .datasets import load_dataset
from .mechanisms import paper_mnar, standardise
from .metrics import rmse_missing


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

    def key(self) -> tuple:
        """What identifies a result; baselines ignore the training settings."""
        trained = self.model not in BASELINES
        return (self.dataset, self.model, int(self.seed),
                int(self.iterations) if trained else 0,
                int(self.impute_samples) if trained else 0, float(self.offset))


def prepare(dataset: str, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised complete data and the paper's MNAR mask (True = observed)."""
    x = standardise(load_dataset(dataset).to_numpy())
    return x, paper_mnar(x, offset)


def run_one(spec: RunSpec, device: str | None = None, progress: bool = False) -> dict:
    """Train (or apply a baseline) and score on the same rows, as the paper does."""
    x, mask = prepare(spec.dataset, spec.offset)
    row = {"dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
           "iterations": spec.iterations, "impute_samples": spec.impute_samples,
           "offset": spec.offset, "missing_rate": float(1 - mask.mean())}
    start = time.perf_counter()
    if spec.model in BASELINES:
        x_imp = impute_baseline(spec.model, np.where(mask, x, np.nan), spec.seed)
        row.update(train_seconds=time.perf_counter() - start, impute_seconds=0.0,
                   final_bound=float("nan"), iterations=0, impute_samples=0)
    else:
        config = config_from_name(spec.model, n_features=x.shape[1])
        xt = torch.tensor(np.where(mask, x, 0.0), dtype=torch.float32)
        mt = torch.tensor(mask)
        result = fit(config, xt, mt, TrainConfig(iterations=spec.iterations,
                                                 batch_size=spec.batch_size,
                                                 num_particles=spec.num_particles,
                                                 seed=spec.seed),
                     device=device, progress=progress)
        start = time.perf_counter()
        x_imp = impute(result.program, xt, mt, spec.impute_samples, seed=spec.seed)
        x_imp = x_imp.cpu().double().numpy()
        tail = result.history[-min(1000, len(result.history)):]
        row.update(train_seconds=result.seconds, impute_seconds=time.perf_counter() - start,
                   final_bound=float(tail.mean()))
    row["rmse"] = rmse_missing(x, x_imp, mask)
    return row
