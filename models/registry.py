"""Parts registered by name, a configuration that names them, and the assembly.

A variant is a :class:`ModelConfig`; ``build_model(config)`` composes the parts into one
:class:`~notmiwae.models.program.NotMIWAE` program. Experiment names such as
``notmiwae-ppca:selfmasking`` are parsed by :func:`config_from_name`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

from . import decoders, missingness
from .encoders import GaussianEncoder
from .latent_mask import LatentMask
from .parts import PartError, check_part, factory_takes
from .priors import StandardNormalPrior
from .program import NotMIWAE
from .regressor import GaussianRegressor

DECODERS: dict[str, Callable[..., nn.Module]] = {
    "gaussian": decoders.GaussianDecoder,
    "studentt": decoders.StudentTDecoder,
    "bernoulli": decoders.BernoulliDecoder,
    "linear-gaussian": lambda latent, d, hidden: decoders.LinearGaussianDecoder(latent, d),
    "factor-analysis": lambda latent, d, hidden: decoders.LinearGaussianDecoder(
        latent, d, per_feature=True),
    "gaussian-shared-scale": decoders.SharedScaleGaussianDecoder,
    "gaussian-feature-scale": lambda latent, d, hidden: decoders.SharedScaleGaussianDecoder(
        latent, d, hidden, per_feature=True),
}

MISSING_MODELS: dict[str, Callable[..., nn.Module] | None] = {
    "ignorable": None,
    "selfmasking": missingness.SelfMasking,
    "selfmasking_known": missingness.SelfMaskingKnown,
    "linear": missingness.LinearMissing,
    "nonlinear": missingness.NonlinearMissing,
}

PRIORS: dict[str, Callable[[int], nn.Module]] = {"normal": StandardNormalPrior}


@dataclass(frozen=True)
class ModelConfig:
    """Names the parts of one variant; everything needed to rebuild it (saved in every
    checkpoint). :func:`build_model` turns it into a program; :func:`config_from_name`
    makes one from a variant name such as ``"notmiwae:selfmasking_known"``.

    Parameters
    ----------
    n_features : int
        D, the number of columns.
    latent_dim : int or None, default=None
        Dimension of z; None gives D - 1.
    decoder, missing, prior : str, default="gaussian", "selfmasking_known", "normal"
        Registered part names (see :func:`register`); ``missing="ignorable"`` is MIWAE.
    hidden : int, default=128
        Units of the networks' tanh layers.
    latent_mask : bool, default=False
        The masked not-MIWAE; ``mask_latent_dim`` the dimension of z_mask (None: as z).
    target : bool, default=False
        Joint supervision: a regressor p(y | x) of ``target_hidden`` ReLU units.

    Examples
    --------
    >>> program = build_model(ModelConfig(n_features=4, missing="linear"))
    >>> type(program.missingness).__name__
    'LinearMissing'
    """

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
                load_installed_parts()
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


def build_model(config: ModelConfig) -> NotMIWAE:
    """Compose prior, decoder, encoder and missing model into one program (one run).

    Each part is built by its registered factory and checked against its contract
    (:func:`notmiwae.models.parts.check_part`) before the program is assembled.
    """
    d, latent = config.n_features, config.latent

    def part(kind: str, name: str, module: nn.Module) -> nn.Module:
        return check_part(kind, name, module, d, latent, config.latent_mask)

    make_missing = MISSING_MODELS[config.missing]
    missing = None
    if make_missing is not None:
        if config.latent_mask and not factory_takes(make_missing, d, latent_mask=True):
            raise PartError(f"missing model {config.missing!r} takes no latent_mask argument: "
                            "it cannot take latent_mask=True (see notmiwae.models.parts)")
        missing = part("missing", config.missing, make_missing(
            d, **({"latent_mask": True} if config.latent_mask else {})))
    return NotMIWAE(
        prior=part("prior", config.prior, PRIORS[config.prior](latent)),
        decoder=part("decoder", config.decoder,
                     DECODERS[config.decoder](latent, d, config.hidden)),
        encoder=GaussianEncoder(d, latent, config.hidden),
        missingness=missing,
        latent_mask=LatentMask(d, config.mask_latent_dim or latent, config.hidden)
        if config.latent_mask else None,
        regressor=GaussianRegressor(d, config.target_hidden) if config.target else None,
    )


SIGNATURES = {"prior": (1,), "decoder": (1, 2, 3), "missing": (2,)}  # example arguments


def register(kind: str, name: str, factory: Callable[..., nn.Module] | None) -> None:
    """Make a part available by name: ``kind`` is "prior", "decoder" or "missing".

    Factories (a part class or any callable returning one): ``prior(latent_dim)``,
    ``decoder(latent_dim, n_features, hidden)``, ``missing(n_features)``, and for the
    masked not-MIWAE ``missing(n_features, latent_mask=True)``. Each returns an
    ``nn.Module`` that keeps the contract of its kind (:mod:`notmiwae.models.parts`);
    parts are written for one run (replicas are added by the training code). A factory
    whose signature cannot take those arguments is refused here; the part itself is
    checked when a program is first built with it. Registration lasts for the Python
    process: for the ``notmiwae`` command, name the module with ``--parts`` or in the
    TOML ``[parts]`` table (see :mod:`notmiwae.inference.user_parts`).
    """
    tables = {"prior": PRIORS, "decoder": DECODERS, "missing": MISSING_MODELS}
    if kind not in tables:
        raise ValueError(f"unknown kind {kind!r}; choose from {sorted(tables)}")
    if factory is not None:
        if not callable(factory):
            raise TypeError(f"{kind} {name!r}: the factory must be callable, got "
                            f"{type(factory).__name__}")
        if not factory_takes(factory, *SIGNATURES[kind]):
            args = {"prior": "latent_dim", "decoder": "latent_dim, n_features, hidden",
                    "missing": "n_features"}[kind]
            raise TypeError(f"{kind} {name!r}: the factory must accept ({args})")
    tables[kind][name] = factory


ENTRY_POINTS = "notmiwae.parts"  # the entry-point group of packages that ship parts
_installed: set[str] = set()


def load_installed_parts() -> None:
    """Load the parts installed packages declare in the entry-point group
    ``notmiwae.parts`` (each names a module whose import registers its parts, or a
    function to call); each entry point once per process."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        key = f"{entry.name}={entry.value}"
        if key in _installed:
            continue
        _installed.add(key)
        loaded = entry.load()
        if callable(loaded):
            loaded()


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
