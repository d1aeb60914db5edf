"""Importance weights of a program's trace, reduced per data row.

For K particles and rows i,

    log w_ik = sum over observed sites     log p(value)               (x^o, s; y if given)
             + sum over encoded latents    log p(z_ik) - log q(z_ik | x_i^o)

Latent sites the guide proposes from the model itself (x^m ~ p(x^m | z)) have p / q = 1
and add nothing. The bound is L_K = sum_i [logsumexp_k log w_ik - log K].
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import pyro
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine import Trace

from notmiwae.models.program import PARTICLE_DIM, NotMIWAE

from .noise import ReplicaNoise


def run_program(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                num_particles: int, noise: list[torch.Generator] | None = None,
                y: torch.Tensor | None = None) -> Trace:
    """One vectorized run of the guide (which runs the model once) over K particles.

    ``noise``: one random generator per replica (see :mod:`notmiwae.inference.noise`); by default
    the global random state is used. ``y``: the target of a jointly supervised program;
    left out, it is latent and so contributes nothing to the weights.
    """
    with ReplicaNoise(noise) if noise else nullcontext():
        with pyro.plate("particles", num_particles, dim=PARTICLE_DIM):
            program.guide(x, mask, y)
    return program.guide.trace


def log_weights_from_trace(trace: Trace, encoded: set[str] | dict) -> torch.Tensor:
    """log w of shape (K, N), or (R, K, N) with replicas: sites summed per (particle, row)."""
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
    """([R,] K, N, F) -> ([R,] K, N): sum the feature dim, keep replicas, particles, rows."""
    if log_p.dim() not in (-PARTICLE_DIM, -PARTICLE_DIM + 1):
        raise ValueError(f"site log-density has shape {tuple(log_p.shape)}; expected "
                         "([replicas,] particles, rows, features): is every site inside "
                         "the data plate?")
    return log_p.sum(-1)


def log_importance_weights(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                           num_particles: int, noise: list[torch.Generator] | None = None,
                           y: torch.Tensor | None = None) -> tuple[torch.Tensor, Trace]:
    """log w (K, N) (or (R, K, N)) and the trace that holds the samples behind it."""
    trace = run_program(program, x, mask, num_particles, noise, y)
    return log_weights_from_trace(trace, program.guide.encoders), trace


def iw_bound(log_w: torch.Tensor) -> torch.Tensor:
    """Per-row bound log (1/K) sum_k w_ik: (K, N) -> (N,), or (R, K, N) -> (R, N)."""
    return torch.logsumexp(log_w, dim=-2) - math.log(log_w.shape[-2])
