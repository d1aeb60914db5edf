"""Imputation's importance weights from a compiled graph of the program.

Imputation runs the program over blocks of rows x importance samples, each giving log w
(K, n) and the values it weighs (:func:`~notmiwae.inference.importance.
weights_and_values`). :class:`CompiledWeights` traces one block through the Pyro program
with ``make_fx``, forward only, with the parameters, buffers, block and noise as the
graph's inputs, and has inductor compile it (as the compiled training step does,
:mod:`notmiwae.inference.compiled`). The noise is drawn outside the graph, from the
global generator in the order the eager run draws it, so from the same seed the
compiled weights are the eager ones up to rounding.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from notmiwae.models.program import NotMIWAE

from .compiled import inductor_compiled, say_unavailable
from .importance import Read, log_importance_weights, weights_and_values
from .noise import FixedNoise, NoiseShapes, draw_noise
from .replicas import _Apply


class CompiledWeights:
    """:func:`~notmiwae.inference.importance.weights_and_values` for blocks of at most
    ``rows`` rows x ``particles`` samples, from a graph captured and compiled once per
    program, ``read``, whether y is given, dtype, device and block size.

    Block sizes are rounded up to powers of two (at most ``rows`` x ``particles``), and a
    smaller block runs padded in the graph of its rounded size: its noise is the eager
    run's, padded with zeros, and the results are cut back. The graphs stay with the
    program as long as it lives; its parameters and buffers are inputs, so training it
    further keeps them valid, but a part swapped into the program afterwards is not
    seen (plain Python attributes are baked in). A program with latent sites other than
    Normal ones (whose draws the graph would make with its own generator), or one that
    cannot be traced or compiled, is said once, in one line, and runs eagerly.
    """

    def __init__(self, rows: int, particles: int) -> None:
        self.rows, self.particles = rows, particles

    def __call__(self, program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                 num_particles: int, read: Read, y: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = len(x)
        if n > self.rows or num_particles > self.particles:
            return weights_and_values(program, x, mask, num_particles, read, y)
        rows, particles = _rounded(n, self.rows), _rounded(num_particles, self.particles)
        key = ("graph", read, y is None, x.dtype, x.device, rows, particles)
        padded = [_padded(t, rows) for t in (x, mask, y)]
        kept = _KEPT.setdefault(program, {})
        if key not in kept:
            kept[key] = self._capture(program, read, particles, *padded)  # None: failed
        if kept[key] is None:
            return weights_and_values(program, x, mask, num_particles, read, y)
        eps = self._noise(program, x, mask, num_particles, y, padded, particles)
        out = kept[key](_inputs(program), *padded, eps)
        value = out[1][:num_particles, :n] if len(out) > 1 else None
        return out[0][:num_particles, :n], value

    def _noise(self, program, x, mask, num_particles, y, padded, particles
               ) -> dict[str, torch.Tensor]:
        """The eager run's noise for this block, each site's padded with zeros to the
        graph's shape."""
        full = _recorded(program, *padded[:2], particles, padded[2]).shapes
        shapes = _recorded(program, x, mask, num_particles, y).shapes
        eps = {name: e[0] for name, e in draw_noise(shapes, [None], x).items()}
        if shapes == full:
            return eps
        out = {}
        for (name, shape), (_, size) in zip(shapes, full, strict=True):
            out[name] = eps[name].new_zeros(size)
            out[name][tuple(slice(0, s) for s in shape)] = eps[name]
        return out

    def _capture(self, program, read, particles, x, mask, y) -> Callable | None:
        try:
            recorded = _recorded(program, x, mask, particles, y)
            if recorded.others:
                raise ValueError(f"latent sites {recorded.others} are not Normal: their "
                                 "draws would differ from the eager run's")

            def weights(single, x, mask, y, eps):
                with FixedNoise(eps):
                    log_w, value = weights_and_values(single, x, mask, particles, read, y)
                return (log_w,) if value is None else (log_w, value)

            module = _Apply(program, weights)

            def run(params, x, mask, y, eps):
                return torch.func.functional_call(
                    module, {f"program.{k}": v for k, v in params.items()},
                    (x, mask, y, eps), strict=False)

            eps = {name: x.new_zeros(shape) for name, shape in recorded.shapes}  # no draws
            inputs = [_inputs(program), x, mask, y, eps]
            return inductor_compiled(make_fx(run)(*inputs), inputs)
        except Exception as err:  # noqa: BLE001 - any failure: fall back, and say why
            say_unavailable("compiled imputation", err, "imputing eagerly")
            return None


_KEPT: weakref.WeakKeyDictionary[NotMIWAE, dict] = weakref.WeakKeyDictionary()


def _recorded(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor, num_particles: int,
              y: torch.Tensor | None) -> NoiseShapes:
    """The program's latent sites for a block of this shape, recorded once by an eager
    run that leaves the random generators as they were."""
    at = ("noise", tuple(x.shape), num_particles, y is None, x.dtype, x.device)
    kept = _KEPT.setdefault(program, {})
    if at not in kept:
        recorder = NoiseShapes()
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), recorder:
            log_importance_weights(program, x, mask, num_particles, y=y)
        kept[at] = recorder
    return kept[at]


def _inputs(program: NotMIWAE) -> dict[str, torch.Tensor]:
    """A program's parameters and buffers by name: the graph's inputs, so that no value of
    the program is baked into it."""
    return {name: t.detach() for name, t in
            [*program.named_parameters(), *program.named_buffers()]}


def _rounded(size: int, most: int) -> int:
    """``size`` rounded up to a power of two, at most ``most``: few graphs for many sizes."""
    return min(most, 1 << (size - 1).bit_length())


def _padded(t: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """``t`` (n, ...), contiguous (the compiled graph expects the strides it was captured
    with), with zero (False) rows appended up to ``rows``."""
    if t is None:
        return None
    if len(t) == rows:
        return t.contiguous()
    return torch.cat([t, t.new_zeros((rows - len(t), *t.shape[1:]))])
