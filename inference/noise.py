"""Reparameterisation noise drawn from one random generator per run.

Replica r of R runs trained together must see exactly the noise that the single run of
its seed would see. Every latent Normal site is sampled as loc + scale * eps, and eps
comes from the run's own generator, site after site, in the order the program samples
them. Sites of other distributions fall back to their own ``rsample``.

- :class:`GeneratorNoise` draws eps as the program runs, from one generator (one run).
- With replicas, the program runs once for all R under ``torch.func.vmap``, where a
  draw cannot tell which replica it is in; so the noise is drawn before the run
  (:func:`draw_noise`, in the order and shapes :class:`NoiseShapes` recorded) and fed
  to the sites by :class:`FixedNoise`.
"""

from __future__ import annotations

import torch
from pyro.distributions import Independent, Normal
from pyro.poutine.messenger import Messenger
from pyro.poutine.subsample_messenger import _Subsample


def generators(seeds: list[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One torch generator per run, seeded with that run's seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def latent_normal(msg) -> Normal | None:
    """The Normal behind a latent sample site that is still to be drawn, else None."""
    if msg["is_observed"] or msg["value"] is not None:
        return None
    fn = msg["fn"]
    while isinstance(fn, Independent):
        fn = fn.base_dist
    return fn if isinstance(fn, Normal) else None


class GeneratorNoise(Messenger):
    """eps ~ N(0, I) from ``generator`` for each latent Normal site, as the program runs.

    Enter it outside the particle plate, so that it sees each site's final distribution.
    """

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator

    def _pyro_sample(self, msg) -> None:
        normal = latent_normal(msg)
        if normal is not None:
            eps = torch.randn(msg["fn"].shape(), generator=self.generator,
                              dtype=normal.loc.dtype, device=normal.loc.device)
            msg["value"] = normal.loc + normal.scale * eps


class NoiseShapes(Messenger):
    """Records (name, shape) of each latent Normal site, in sampling order; the sites
    take their means (eps = 0), as only the shapes are wanted. ``others``: the latent
    sites of other distributions, which draw with their own ``rsample``."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[str, torch.Size]] = []
        self.others: list[str] = []

    def _pyro_sample(self, msg) -> None:
        normal = latent_normal(msg)
        if normal is not None:
            self.shapes.append((msg["name"], msg["fn"].shape()))
            msg["value"] = (normal.loc + 0 * normal.scale).expand(msg["fn"].shape())
        elif not (msg["is_observed"] or msg["value"] is not None
                  or isinstance(msg["fn"], _Subsample)):  # a plate's indices
            self.others.append(msg["name"])


class FixedNoise(Messenger):
    """Latent Normal sites take loc + scale * eps[name], eps given."""

    def __init__(self, eps: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.eps = eps

    def _pyro_sample(self, msg) -> None:
        normal = latent_normal(msg)
        if normal is not None:
            msg["value"] = normal.loc + normal.scale * self.eps[msg["name"]]


def draw_noise(shapes: list[tuple[str, torch.Size]], gens: list[torch.Generator],
               like: torch.Tensor) -> dict[str, torch.Tensor]:
    """eps[name] of shape (R, *shape): row r drawn from ``gens[r]``, site after site, as
    :class:`GeneratorNoise` would draw it in the single run of replica r."""
    per_run = [[torch.randn(shape, generator=g, dtype=like.dtype, device=like.device)
                for _, shape in shapes] for g in gens]
    return {name: torch.stack([run[i] for run in per_run])
            for i, (name, _) in enumerate(shapes)}
