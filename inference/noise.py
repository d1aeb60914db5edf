"""Reparameterisation noise drawn from one random generator per replica.

Replica r of a program trained with R replicas must see exactly the noise a single run
with its seed would see. ``ReplicaNoise`` samples every latent Normal site as
loc + scale * eps, with eps for replica r drawn from generator r, in the same order and
shape as a single run draws it. Sites of other distributions fall back to ``rsample``.
"""

from __future__ import annotations

import torch
from pyro.distributions import Independent, Normal
from pyro.poutine.messenger import Messenger


def generators(seeds: list[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One torch generator per replica, seeded with that replica's seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


class ReplicaNoise(Messenger):
    """Enter it outside the particle plate, so that it sees each site's final distribution."""

    def __init__(self, gens: list[torch.Generator]) -> None:
        super().__init__()
        self.gens = gens

    def _pyro_sample(self, msg) -> None:
        if msg["is_observed"] or msg["value"] is not None:
            return
        fn = msg["fn"]
        while isinstance(fn, Independent):
            fn = fn.base_dist
        if not isinstance(fn, Normal):
            return
        shape = msg["fn"].shape()
        msg["value"] = fn.loc + fn.scale * self.standard_normal(shape, fn.loc)

    def standard_normal(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        """eps of ``shape``; with R > 1 generators, shape[0] is the replica dimension."""
        if len(self.gens) == 1:
            return torch.randn(shape, generator=self.gens[0], dtype=like.dtype,
                               device=like.device)
        if shape[0] != len(self.gens):
            raise ValueError(f"site of shape {tuple(shape)} has no leading dimension of "
                             f"{len(self.gens)} replicas")
        return torch.stack([torch.randn(shape[1:], generator=g, dtype=like.dtype,
                                        device=like.device) for g in self.gens])
