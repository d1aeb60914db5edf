"""A compiled training step: the program's computation captured once, compiled, replayed.

The Pyro program stays the source of truth. One step's gradient is traced *through* it
at the level of PyTorch's own operations: ``make_fx`` of ``torch.func.grad_and_value`` of
the bound, with the parameters, the minibatch and the reparameterisation noise as the
graph's inputs. What comes out is a graph of a few hundred tensor operations with no
Pyro left in it, which ``torch.compile`` (inductor) fuses; on a GPU, CUDA graphs replay
it (``mode="reduce-overhead"``). So every variant, a registered prior, decoder or
missing model, the latent mask, the regressor and replicas get the fast path without a
line written twice.

The noise is drawn outside the graph, from each replica's generator in the order the
eager step draws it (:func:`notmiwae.inference.noise.draw_noise`), so the compiled step
takes the eager step's draws; only rounding differs. Adam stays outside the graph. One
graph is captured per input shape. When a part cannot be traced or compiled (Python
control flow on tensor values, an operation the compiler lacks), the step says so in
one line and runs eagerly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from notmiwae.models.program import NotMIWAE

from .importance import ReplicatedLogWeights, iw_bound, log_importance_weights
from .noise import FixedNoise
from .replicas import _Apply, replica_count, replica_map


class CompiledStep:
    """``step(x, mask, y=None)`` with x, mask (R, B, D): one Adam step for every replica,
    returning the bound per replica (R,), as the eager step does.

    ``compile_seconds`` is the time spent tracing and compiling (first calls per shape).
    """

    def __init__(self, program: NotMIWAE, num_particles: int, noise: list[torch.Generator],
                 optimizer: torch.optim.Optimizer, eager: Callable) -> None:
        self.program, self.num_particles, self.optimizer = program, num_particles, optimizer
        self.weights = ReplicatedLogWeights(program, num_particles, noise)
        self.eager = eager
        self.params = dict(program.named_parameters())  # the same tensors every step
        self.graphs: dict[tuple, Callable] = {}
        self.failed = False
        self.compile_seconds = 0.0

    def __call__(self, x: torch.Tensor, mask: torch.Tensor,
                 y: torch.Tensor | None = None) -> np.ndarray:
        if self.failed:
            return self.eager(x, mask, y)
        eps = self.weights.noise(x, mask, y)
        params = self.params
        key = (tuple(x.shape), None if y is None else tuple(y.shape))
        if key not in self.graphs:
            graph = self._capture(params, x, mask, y, eps)
            if graph is None:  # said so; this and every later step run eagerly
                return self.eager(x, mask, y)
            self.graphs[key] = graph
        grads, bound = self.graphs[key](_plain(params), x, mask, y, eps)
        for name, param in params.items():
            param.grad = grads[name].contiguous()  # fused Adam misreads strided grads
        self.optimizer.step()
        return bound.detach().cpu().numpy()

    def _loss(self, params, x, mask, y, eps):
        """-(sum over replicas of the mean bound over rows), and the bound (R,)."""
        def fed(single, x, mask, y, eps):
            with FixedNoise(eps):
                return log_importance_weights(single, x, mask, self.num_particles, y=y)[0]

        if replica_count(self.program) == 1:
            one = {k: v[0] for k, v in eps.items()}
            log_w = torch.func.functional_call(
                _Apply(self.program, fed), {f"program.{k}": v for k, v in params.items()},
                (x[0], mask[0], None if y is None else y[0], one), strict=False).unsqueeze(0)
        else:
            log_w = replica_map(self.program, fed, x, mask, y, eps, params=params,
                                in_dims=(0, 0, None if y is None else 0, 0))
        bound = iw_bound(log_w).mean(-1)
        return -bound.sum(), bound.detach()

    def _capture(self, params, x, mask, y, eps) -> Callable | None:
        start = time.perf_counter()
        try:
            grad_fn = torch.func.grad_and_value(self._loss, has_aux=True)

            def step(params, x, mask, y, eps):
                (grads, (_, bound)) = grad_fn(params, x, mask, y, eps)
                return grads, bound

            traced = make_fx(step)(_plain(params), x, mask, y, eps)
            mode = "reduce-overhead" if x.device.type == "cuda" else None
            compiled = torch.compile(traced, mode=mode, dynamic=False)
            compiled(_plain(params), x, mask, y, eps)  # compile now, not inside the timing
        except Exception as err:  # noqa: BLE001 - any failure: fall back, and say why
            print(f"compiled training step unavailable ({type(err).__name__}: "
                  f"{str(err).splitlines()[0][:200] if str(err) else ''}); training eagerly",
                  file=sys.stderr)
            self.failed = True
            return None
        finally:
            self.compile_seconds += time.perf_counter() - start
        return compiled


def _plain(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parameters' values without autograd history: the graph computes the gradient."""
    return {name: p.detach() for name, p in params.items()}
