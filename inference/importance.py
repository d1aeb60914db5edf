"""Importance weights of a program's trace, reduced per data row.

For K particles and rows i,

    log w_ik = sum over observed sites     log p(value)               (x^o, s; y if given)
             + sum over encoded latents    log p(z_ik) - log q(z_ik | x_i^o)

Latent sites the guide proposes from the model itself (x^m ~ p(x^m | z)) have p / q = 1
and add nothing. The bound is L_K = sum_i [logsumexp_k log w_ik - log K].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext

import pyro
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine import Trace

from notmiwae.models.program import PARTICLE_DIM, NotMIWAE

from .noise import FixedNoise, GeneratorNoise, NoiseShapes, draw_noise
from .replicas import replica_count, replica_map


def run_program(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                num_particles: int, noise: torch.Generator | None = None,
                y: torch.Tensor | None = None) -> Trace:
    """One vectorized run of the guide (which runs the model once) over K particles.

    ``noise``: the random generator of the reparameterisation noise (see
    :mod:`notmiwae.inference.noise`); by default the global random state is used.
    ``y``: the target of a jointly supervised program; left out, it is latent and so
    contributes nothing to the weights.
    """
    with GeneratorNoise(noise) if noise is not None else nullcontext(), \
            program.unregistered(), pyro.plate("particles", num_particles, dim=PARTICLE_DIM):
        program.guide(x, mask, y)
    return program.guide.trace


def log_weights_from_trace(trace: Trace, encoded: set[str] | dict) -> torch.Tensor:
    """log w of shape (K, N): the sites summed per (particle, row)."""
    total = 0.0
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["infer"].get("_deterministic"):
            continue
        value = site["value"]
        if site["is_observed"]:
            log_p = site["fn"].log_prob(value)
        elif name in encoded:
            log_p = site["infer"]["prior"].log_prob(value) - site["fn"].log_prob(value)
        else:
            continue  # proposed from the model's own conditional: log p - log q = 0
        log_p = scale_and_mask(log_p, site["scale"], site["mask"])
        total = total + _per_row(log_p)
    return total


def _per_row(log_p: torch.Tensor) -> torch.Tensor:
    """(K, N, F) -> (K, N): sum the feature dim, keep particles and rows."""
    if log_p.dim() != -PARTICLE_DIM:
        raise ValueError(f"site log-density has shape {tuple(log_p.shape)}; expected "
                         "(particles, rows, features): is every site inside the data plate?")
    return log_p.sum(-1)


def log_importance_weights(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                           num_particles: int, noise: torch.Generator | None = None,
                           y: torch.Tensor | None = None) -> tuple[torch.Tensor, Trace]:
    """log w (K, N) and the trace that holds the samples behind it."""
    trace = run_program(program, x, mask, num_particles, noise, y)
    return log_weights_from_trace(trace, program.guide.encoders), trace


Read = Callable[[Trace], torch.Tensor | None]  # what imputation averages, off a trace


def weights_and_values(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                       num_particles: int, read: Read, y: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log w (K, n) of one run of the program over K particles, and ``read`` of its trace
    (the values imputation weighs, e.g. E[x^m | z_k])."""
    log_w, trace = log_importance_weights(program, x, mask, num_particles, y=y)
    return log_w, read(trace)


class ReplicatedLogWeights:
    """log w (R, K, B) of a stacked program (:mod:`notmiwae.inference.replicas`): x and
    mask (R, B, D) hold each replica's minibatch (y (R, B, 1)), and replica r's noise
    comes from ``noise[r]``, so that replica r computes what its single run computes.

    The noise is drawn before the batched run, in the sites' order and shapes, which one
    extra run records for each new input shape.
    """

    def __init__(self, program: NotMIWAE, num_particles: int,
                 noise: list[torch.Generator]) -> None:
        self.program, self.num_particles = program, num_particles
        self.noise_generators = noise
        self.shapes: dict[tuple, list] = {}

    def __call__(self, x: torch.Tensor, mask: torch.Tensor,
                 y: torch.Tensor | None = None) -> torch.Tensor:
        if replica_count(self.program) == 1:
            log_w, _ = log_importance_weights(self.program, x[0], mask[0], self.num_particles,
                                              self.noise_generators[0],
                                              None if y is None else y[0])
            return log_w.unsqueeze(0)
        eps = self.noise(x, mask, y)
        return replica_map(self.program, self._log_w, x, mask, y, eps,
                           in_dims=(0, 0, None if y is None else 0, 0))

    def noise(self, x: torch.Tensor, mask: torch.Tensor,
              y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The next noise of every replica, eps[site] (R, *site shape), as its single run
        would draw it."""
        key = (tuple(x.shape), y is None)
        if key not in self.shapes:
            self.shapes[key] = self._record(x, mask, y, (0, 0, None if y is None else 0))
        return draw_noise(self.shapes[key], self.noise_generators, x)

    def _log_w(self, single: NotMIWAE, x, mask, y, eps) -> torch.Tensor:
        with FixedNoise(eps):
            return log_importance_weights(single, x, mask, self.num_particles, y=y)[0]

    def _record(self, x, mask, y, in_dims) -> list:
        recorder = NoiseShapes()

        def run(single, x, mask, y):
            with recorder, torch.no_grad():
                log_importance_weights(single, x, mask, self.num_particles, y=y)
            return x.new_zeros(())

        if replica_count(self.program) == 1:
            run(self.program, x[0], mask[0], None if y is None else y[0])
        else:
            replica_map(self.program, run, x, mask, y, in_dims=in_dims)
        return recorder.shapes


def iw_bound(log_w: torch.Tensor) -> torch.Tensor:
    """Per-row bound log (1/K) sum_k w_ik: (K, N) -> (N,), or (R, K, N) -> (R, N)."""
    return torch.logsumexp(log_w, dim=-2) - math.log(log_w.shape[-2])
