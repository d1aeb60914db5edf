"""Inference: importance-weighted training, imputation, and the scikit-learn imputer."""

from .imputation import impute, multiple_impute
from .imputer import NotMIWAEImputer
from .pooling import rubin_pool
from .training import FitResult, TrainConfig, fit, load_checkpoint

__all__ = ["NotMIWAEImputer", "TrainConfig", "FitResult", "fit", "load_checkpoint", "impute",
           "multiple_impute", "rubin_pool"]
