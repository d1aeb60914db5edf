"""notmiwae-pyro: deep generative imputation of data Missing Not At Random, as Pyro programs.

The everyday API::

    from notmiwae import NotMIWAEImputer
    filled = NotMIWAEImputer(missing="selfmasking_known").fit_transform(df)

The generative side lives in :mod:`notmiwae.models`, training and imputation in
:mod:`notmiwae.inference`, the experiments of the paper and its extensions in
:mod:`notmiwae.experiments`.
"""

from notmiwae.inference import (
    FitResult,
    NotMIWAEImputer,
    TrainConfig,
    fit,
    impute,
    load_checkpoint,
    multiple_impute,
    rubin_pool,
)
from notmiwae.models import (
    Decoder,
    Encoder,
    LatentMaskNetwork,
    MissingModel,
    ModelConfig,
    NotMIWAE,
    Prior,
    Regressor,
    build_model,
    config_from_name,
    register,
)

__version__ = "0.1.0"

__all__ = ["NotMIWAEImputer", "ModelConfig", "TrainConfig", "FitResult", "NotMIWAE", "fit",
           "impute", "multiple_impute", "rubin_pool", "build_model", "config_from_name",
           "load_checkpoint", "register", "Prior", "Encoder", "Decoder", "MissingModel",
           "LatentMaskNetwork", "Regressor"]
