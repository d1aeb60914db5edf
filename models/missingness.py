"""Missing-process models p(s | x).

Each module maps a complete x (..., D) to the logits of P(s_j = 1 | x), s_j = 1 meaning
"x_j is observed". ``None`` in place of a module means ignorable missingness (MIWAE).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SelfMasking(nn.Module):
    """logit_j = -W_j (x_j - b_j): each feature's own value drives its missingness."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))

    def slope(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.slope() * (x - self.bias)


class SelfMaskingKnown(SelfMasking):
    """logit_j = -softplus(W_j) (x_j - b_j): larger values are more likely missing."""

    def slope(self) -> torch.Tensor:
        return F.softplus(self.weight)


class LinearMissing(nn.Module):
    """logits = A x + c: any feature may drive any feature's missingness ("agnostic")."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_features, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class NonlinearMissing(nn.Module):
    """logits = A2 tanh(A1 x + c1) + c2: one hidden layer."""

    def __init__(self, n_features: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or n_features
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(),
                                 nn.Linear(hidden, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
