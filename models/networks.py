"""Small building block shared by encoders, decoders and missing models."""

from __future__ import annotations

from torch import nn


def mlp(n_in: int, n_hidden: int, n_layers: int = 2) -> nn.Sequential:
    """``n_layers`` dense layers of ``n_hidden`` tanh units: the trunk of every network."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else n_hidden, n_hidden), nn.Tanh()]
    return nn.Sequential(*layers)
