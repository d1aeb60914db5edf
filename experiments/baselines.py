"""Baseline imputers of the paper's Table 1 (and KNN), on arrays with NaN for missing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer


def _mean(seed: int):
    return SimpleImputer(strategy="mean")


def _mice(seed: int):
    return IterativeImputer(max_iter=10, random_state=0)  # the paper's fixed setting


def _missforest(seed: int):
    return IterativeImputer(estimator=RandomForestRegressor(n_estimators=100, random_state=seed),
                            max_iter=10, random_state=seed)


def _knn(seed: int):
    return KNNImputer(n_neighbors=5)


BASELINES: dict[str, Callable[[int], object]] = {
    "mean": _mean, "mice": _mice, "missforest": _missforest, "knn": _knn}


def impute_baseline(name: str, x_nan: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fill the NaN of ``x_nan`` with baseline ``name``; observed entries kept as they are."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    filled = BASELINES[name](seed).fit_transform(x_nan)
    return np.where(np.isnan(x_nan), filled, x_nan)
