"""Missing-process models p(s | x).

Each module maps a complete x (..., D) to the logits of P(s_j = 1 | x), s_j = 1 meaning
"x_j is observed". ``None`` in place of a module means ignorable missingness (MIWAE).
With a latent mask variable (masked not-MIWAE), ``shift`` = mu_m(z_mask) (..., D) enters
the logits too: self-masking adds g_j * shift_j, the dense models take x + shift.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .networks import Dense
from .parts import MissingModel


class SelfMasking(MissingModel):
    """logit_j = -W_j (x_j - b_j): each feature's own value drives its missingness."""

    def __init__(self, n_features: int, latent_mask: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.gain = nn.Parameter(torch.zeros(n_features)) if latent_mask else None

    def slope(self, weight: torch.Tensor) -> torch.Tensor:
        return weight

    @torch.no_grad()
    def glorot_(self) -> None:
        """W, b ~ U(-a, a), a = sqrt(6 / (1 + D)): TensorFlow's default for a variable of
        shape (1, 1, D), which is how the paper's code holds them (the gain stays 0)."""
        bound = math.sqrt(6.0 / (1 + self.weight.shape[-1]))
        self.weight.uniform_(-bound, bound)
        self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        logits = -self.slope(self.weight) * (x - self.bias)
        if shift is None:
            return logits
        if self.gain is None:
            raise ValueError("build with latent_mask=True to take a latent mask shift")
        return logits + self.gain * shift


class SelfMaskingKnown(SelfMasking):
    """logit_j = -softplus(W_j) (x_j - b_j): larger values are more likely missing."""

    def slope(self, weight: torch.Tensor) -> torch.Tensor:
        return F.softplus(weight)


class LinearMissing(MissingModel):
    """logits = A x + c: any feature may drive any feature's missingness ("agnostic").

    ``latent_mask`` is accepted like every missing model's, and needs no parameter here:
    the shift enters through the dense layer as A (x + shift) + c.
    """

    def __init__(self, n_features: int, latent_mask: bool = False) -> None:
        super().__init__()
        self.dense = Dense(n_features, n_features)

    def forward(self, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        return self.dense(x if shift is None else x + shift)


class NonlinearMissing(MissingModel):
    """logits = A2 tanh(A1 x + c1) + c2: one hidden layer (a shift enters as x + shift)."""

    def __init__(self, n_features: int, latent_mask: bool = False,
                 hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or n_features
        self.net = nn.Sequential(Dense(n_features, hidden), nn.Tanh(),
                                 Dense(hidden, n_features))

    def forward(self, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x if shift is None else x + shift)
