"""The generative side: priors, observation models, missing processes, the program."""

from .program import NotMIWAE
from .registry import ModelConfig, build_model, config_from_name

__all__ = ["NotMIWAE", "ModelConfig", "build_model", "config_from_name"]
