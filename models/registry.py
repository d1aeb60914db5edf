"""Parts registered by name, a configuration that names them, and the assembly.

A variant is a :class:`ModelConfig`; ``build_model(config)`` composes the parts into one
:class:`~notmiwae.models.program.NotMIWAE` program. Experiment names such as
``notmiwae-ppca:selfmasking`` are parsed by :func:`config_from_name`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

from . import decoders, missingness
from .encoders import GaussianEncoder
from .latent_mask import LatentMask
from .priors import StandardNormalPrior
from .program import NotMIWAE
from .regressor import GaussianRegressor

DECODERS: dict[str, Callable[..., nn.Module]] = {
    "gaussian": lambda latent, d, hidden, **kw: decoders.GaussianDecoder(latent, d, hidden, **kw),
    "studentt": lambda latent, d, hidden, **kw: decoders.StudentTDecoder(latent, d, hidden, **kw),
    "bernoulli": lambda latent, d, hidden, **kw: decoders.BernoulliDecoder(latent, d, hidden,
                                                                           **kw),
    "linear-gaussian": lambda latent, d, hidden, **kw: decoders.LinearGaussianDecoder(latent, d,
                                                                                      **kw),
}

MISSING_MODELS: dict[str, Callable[[int], nn.Module] | None] = {
    "ignorable": None,
    "selfmasking": missingness.SelfMasking,
    "selfmasking_known": missingness.SelfMaskingKnown,
    "linear": missingness.LinearMissing,
    "nonlinear": missingness.NonlinearMissing,
}

PRIORS: dict[str, Callable[[int], nn.Module]] = {"normal": StandardNormalPrior}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model: saved in every checkpoint."""

    n_features: int
    latent_dim: int | None = None  # default: n_features - 1
    decoder: str = "gaussian"
    missing: str = "selfmasking_known"
    prior: str = "normal"
    hidden: int = 128
    latent_mask: bool = False  # masked not-MIWAE: a latent z_mask acting on the mask
    mask_latent_dim: int | None = None  # default: that of z
    target: bool = False  # joint supervision: a regressor p(y | x) inside the program
    target_hidden: int = 128

    def __post_init__(self) -> None:
        for field, table in (("decoder", DECODERS), ("missing", MISSING_MODELS),
                             ("prior", PRIORS)):
            value = getattr(self, field)
            if value not in table:
                raise ValueError(f"unknown {field} {value!r}; choose from {sorted(table)}")
        for field in ("n_features", "hidden", "target_hidden", "latent_dim", "mask_latent_dim"):
            value = getattr(self, field)
            if value is not None and value < 1:  # None: the default dimension
                raise ValueError(f"{field} must be >= 1, got {value}")
        if self.latent_mask and self.missing == "ignorable":
            raise ValueError("latent_mask needs a non-ignorable missing model")

    @property
    def latent(self) -> int:
        return max(self.n_features - 1, 1) if self.latent_dim is None else self.latent_dim

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(config: ModelConfig, replicas: int = 1) -> NotMIWAE:
    """Compose prior, decoder, encoder and missing model into one program.

    ``replicas=R`` gives every network R independent sets of weights (see
    :mod:`notmiwae.models.networks`); parts registered by users need to accept
    ``replicas`` for this.
    """
    d, latent = config.n_features, config.latent
    make_missing = MISSING_MODELS[config.missing]
    kw = {} if replicas == 1 else {"replicas": replicas}
    mask_kw = {"latent_mask": True} if config.latent_mask else {}
    try:
        return NotMIWAE(
            prior=PRIORS[config.prior](latent),
            decoder=DECODERS[config.decoder](latent, d, config.hidden, **kw),
            encoder=GaussianEncoder(d, latent, config.hidden, **kw),
            missingness=None if make_missing is None else make_missing(d, **kw, **mask_kw),
            replicas=replicas,
            latent_mask=LatentMask(d, config.mask_latent_dim or latent, config.hidden, **kw)
            if config.latent_mask else None,
            regressor=GaussianRegressor(d, config.target_hidden, **kw) if config.target else None,
        )
    except TypeError as err:
        if replicas == 1:
            raise
        raise ValueError(f"a part of {config} does not support replicas: {err}") from None


def register(kind: str, name: str, factory: Callable | None) -> None:
    """Make a part available by name: ``kind`` is "prior", "decoder" or "missing".

    Factories: prior(latent_dim), decoder(latent_dim, n_features, hidden),
    missing(n_features); each returns an ``nn.Module`` (see the modules of this package).
    For replicas, decoders and missing models are also called with ``replicas=R``; for
    the masked not-MIWAE, missing models with ``latent_mask=True`` and then take a second
    argument in ``forward(x, shift)``. Registration lasts for the Python session: register
    again before loading a saved model that uses the part.
    """
    tables = {"prior": PRIORS, "decoder": DECODERS, "missing": MISSING_MODELS}
    if kind not in tables:
        raise ValueError(f"unknown kind {kind!r}; choose from {sorted(tables)}")
    tables[kind][name] = factory


FAMILIES = {  # name: (decoder, missing model or None for ':<missing>', latent mask)
    "miwae": ("gaussian", "ignorable", False),
    "ppca": ("linear-gaussian", "ignorable", False),
    "notmiwae": ("gaussian", None, False),
    "notmiwae-ppca": ("linear-gaussian", None, False),
    "masked-notmiwae": ("gaussian", None, True),
    "masked-notmiwae-ppca": ("linear-gaussian", None, True),
}


def variant_from_name(name: str) -> dict:
    """``miwae``, ``ppca``, ``[masked-]notmiwae[-ppca]:<missing>`` to their parts."""
    family, _, missing = name.partition(":")
    if family not in FAMILIES:
        raise ValueError(f"unknown model {name!r}; families are {sorted(FAMILIES)}")
    decoder, fixed_missing, latent_mask = FAMILIES[family]
    if (fixed_missing is None) == (not missing):
        need = "needs ':<missing model>'" if fixed_missing is None else "takes no ':<missing>'"
        raise ValueError(f"model {name!r}: {family} {need}; missing models are "
                         f"{sorted(m for m in MISSING_MODELS if m != 'ignorable')}")
    parts = {"decoder": decoder, "missing": fixed_missing or missing}
    return {**parts, "latent_mask": True} if latent_mask else parts


def config_from_name(name: str, n_features: int, **overrides) -> ModelConfig:
    """The :class:`ModelConfig` of a named variant (see :func:`variant_from_name`)."""
    return ModelConfig(n_features=n_features, **{**variant_from_name(name), **overrides})
