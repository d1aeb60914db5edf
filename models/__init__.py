"""The generative side: the program, its parts and their contracts, the registry.

A variant is a :class:`ModelConfig` naming registered parts; :func:`build_model` composes
them into one :class:`NotMIWAE` program. Each kind of part has a contract in
:mod:`notmiwae.models.parts`; :func:`register` adds a part of one's own by name.
"""

from .parts import Decoder, Encoder, LatentMaskNetwork, MissingModel, Prior, Regressor
from .program import NotMIWAE
from .registry import ModelConfig, build_model, config_from_name, register

__all__ = ["NotMIWAE", "ModelConfig", "build_model", "config_from_name", "register", "Prior",
           "Encoder", "Decoder", "MissingModel", "LatentMaskNetwork", "Regressor"]
