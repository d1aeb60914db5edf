"""The six UCI data sets of the paper's Table 1, bundled with the package.

Provenance, licence and column choices: ``experiments/data/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd


@dataclass(frozen=True)
class DatasetSpec:
    file: str | None
    features: tuple[str, ...] | None = None  # None: every column but those dropped
    drop: tuple[str, ...] = ()
    target: str | None = None  # a column kept aside for supervised tasks


DATASETS: dict[str, DatasetSpec] = {
    "banknote": DatasetSpec("banknote.csv", drop=("class",)),
    "concrete": DatasetSpec("concrete.csv", target="compressive_strength_mpa"),
    "red": DatasetSpec("winequality-red.csv", drop=("quality",), target="quality"),
    "white": DatasetSpec("winequality-white.csv", drop=("quality",), target="quality"),
    "yeast": DatasetSpec("yeast.csv", features=("mcg", "gvh", "alm", "mit", "vac", "nuc")),
    "breast": DatasetSpec(None),  # scikit-learn's copy of Breast Cancer Wisconsin (Diagnostic)
}


def _read(spec: DatasetSpec) -> pd.DataFrame:
    if spec.file is None:
        from sklearn.datasets import load_breast_cancer

        return load_breast_cancer(as_frame=True).frame.drop(columns="target")
    with resources.files("notmiwae.experiments.data").joinpath(spec.file).open("r") as handle:
        return pd.read_csv(handle)


def load_dataset(name: str) -> pd.DataFrame:
    """The feature columns the paper uses, as floats (rows x features)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose from {sorted(DATASETS)}")
    spec = DATASETS[name]
    frame = _read(spec)
    if spec.features is not None:
        frame = frame[list(spec.features)]
    return frame.drop(columns=list(spec.drop)).astype(float)


def load_target(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features without the target column, and the target, for supervised tasks."""
    spec = DATASETS.get(name)
    if spec is None or spec.target is None:
        have = sorted(k for k, v in DATASETS.items() if v.target)
        raise ValueError(f"data set {name!r} has no target; ones that do: {have}")
    frame = _read(spec).astype({spec.target: float})
    features = frame.drop(columns=[spec.target, *[c for c in spec.drop if c != spec.target]])
    return features.astype(float), frame[spec.target]
