"""Building blocks shared by encoders, decoders and missing models.

Every parameter carries a leading *replica* dimension R, so that R independent runs of
one configuration train as one program (see ``NotMIWAE(replicas=R)``). With R = 1 the
layers are ordinary dense layers on inputs (..., features); with R > 1 inputs are
(R, ..., features) and replica r is computed with its own weights (one batched matmul).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class Dense(nn.Module):
    """y = x W_r^T + b_r, initialised like ``nn.Linear`` (U(-1/sqrt(in), 1/sqrt(in)))."""

    def __init__(self, n_in: int, n_out: int, replicas: int = 1) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(replicas, n_out, n_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(replicas, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        replicas = self.weight.shape[0]
        if replicas == 1:
            return F.linear(x, self.weight[0], self.bias[0, 0])
        flat = x.reshape(replicas, -1, x.shape[-1])
        out = torch.baddbmm(self.bias, flat, self.weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], out.shape[-1])

    @torch.no_grad()
    def glorot_(self) -> None:
        """Keras' default: W ~ U(-a, a), a = sqrt(6 / (n_in + n_out)) (Glorot uniform); b = 0."""
        n_out, n_in = self.weight.shape[1:]
        bound = math.sqrt(6.0 / (n_in + n_out))
        self.weight.uniform_(-bound, bound)
        self.bias.zero_()


def glorot_(module: nn.Module) -> nn.Module:
    """Re-initialise ``module`` as the paper's TensorFlow code is initialised: every part
    with a ``glorot_()`` method (dense layers, self-masking parameters) calls it, in
    ``module.modules()`` order; other parameters keep their initial values."""
    for part in module.modules():
        if hasattr(part, "glorot_"):
            part.glorot_()
    return module


def mlp(n_in: int, n_hidden: int, n_layers: int = 2, replicas: int = 1) -> nn.Sequential:
    """``n_layers`` dense layers of ``n_hidden`` tanh units: the trunk of every network."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [Dense(n_in if i == 0 else n_hidden, n_hidden, replicas), nn.Tanh()]
    return nn.Sequential(*layers)


def replica_parameter(shape: tuple[int, ...], replicas: int, fill: float = 0.0) -> nn.Parameter:
    """A parameter of shape (R, *shape), filled with ``fill``."""
    return nn.Parameter(torch.full((replicas, *shape), fill))


def per_replica(param: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (R, *shape) parameter viewed to broadcast against ``like`` (R, ..., *shape).

    With R = 1 this is simply ``param[0]``, which broadcasts against (..., *shape).
    """
    replicas = param.shape[0]
    if replicas == 1:
        return param[0]
    middle = like.dim() - param.dim()
    return param.view(replicas, *([1] * middle), *param.shape[1:])
