"""Missing-process models p(s | x).

Each module maps a complete x (..., D) to the logits of P(s_j = 1 | x), s_j = 1 meaning
"x_j is observed". ``None`` in place of a module means ignorable missingness (MIWAE).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .networks import Dense, per_replica, replica_parameter


class SelfMasking(nn.Module):
    """logit_j = -W_j (x_j - b_j): each feature's own value drives its missingness."""

    def __init__(self, n_features: int, replicas: int = 1) -> None:
        super().__init__()
        self.weight = replica_parameter((n_features,), replicas)
        self.bias = replica_parameter((n_features,), replicas)

    def slope(self, weight: torch.Tensor) -> torch.Tensor:
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = per_replica(self.weight, x), per_replica(self.bias, x)
        return -self.slope(weight) * (x - bias)


class SelfMaskingKnown(SelfMasking):
    """logit_j = -softplus(W_j) (x_j - b_j): larger values are more likely missing."""

    def slope(self, weight: torch.Tensor) -> torch.Tensor:
        return F.softplus(weight)


class LinearMissing(nn.Module):
    """logits = A x + c: any feature may drive any feature's missingness ("agnostic")."""

    def __init__(self, n_features: int, replicas: int = 1) -> None:
        super().__init__()
        self.dense = Dense(n_features, n_features, replicas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class NonlinearMissing(nn.Module):
    """logits = A2 tanh(A1 x + c1) + c2: one hidden layer."""

    def __init__(self, n_features: int, replicas: int = 1, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or n_features
        self.net = nn.Sequential(Dense(n_features, hidden, replicas), nn.Tanh(),
                                 Dense(hidden, n_features, replicas))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
