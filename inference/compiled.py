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
takes the eager step's draws; only rounding differs. On the CPU, Adam's update is part
of the graph too (:func:`adam_update`, on the optimizer's own state tensors, so
checkpoints and a later eager step see it); on a GPU it stays outside, as CUDA graphs
replay only graphs that leave their inputs unchanged. One graph is captured per input
shape and compiled by inductor directly (no Dynamo guards to check on every call). When
a part cannot be traced or compiled (Python control flow on tensor values, an operation
the compiler lacks), the step says so in one line and runs eagerly.

Imputation's importance weights are compiled the same way, forward only
(:mod:`notmiwae.inference.compiled_imputation`).
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
    ``transpose_narrow=False`` leaves the graph's matrix products as traced (for the
    benchmark's comparison; see :func:`narrow_products_transposed`).
    """

    def __init__(self, program: NotMIWAE, num_particles: int, noise: list[torch.Generator],
                 optimizer: torch.optim.Optimizer, eager: Callable,
                 transpose_narrow: bool = True) -> None:
        self.program, self.num_particles, self.optimizer = program, num_particles, optimizer
        self.transpose_narrow = transpose_narrow  # see narrow_products_transposed
        self.weights = ReplicatedLogWeights(program, num_particles, noise)
        self.eager = eager
        self.params = dict(program.named_parameters())  # the same tensors every step
        self.adam = adam_settings(optimizer, list(self.params.values()))
        self.graphs: dict[tuple, Callable] = {}
        self.failed = False
        self.compile_seconds = 0.0

    def __call__(self, x: torch.Tensor, mask: torch.Tensor,
                 y: torch.Tensor | None = None) -> np.ndarray:
        if self.failed:
            return self.eager(x, mask, y)
        params = self.params
        key = (tuple(x.shape), None if y is None else tuple(y.shape))
        if key not in self.graphs:
            generators = self.weights.noise_generators
            saved = [g.get_state() for g in generators], torch.random.get_rng_state()
            eps = self.weights.noise(x, mask, y)
            graph = self._capture(params, x, mask, y, eps)
            if graph is None:  # said so; this and every later step run eagerly, from
                for g, state in zip(generators, saved[0], strict=True):  # the same draws
                    g.set_state(state)
                torch.random.set_rng_state(saved[1])
                return self.eager(x, mask, y)
            self.graphs[key] = graph
        else:
            eps = self.weights.noise(x, mask, y)
        if self.adam is not None:
            bound = self.graphs[key](*self._inputs(x, mask, y, eps))
            return bound.cpu().numpy()
        grads, bound = self.graphs[key](*self._inputs(x, mask, y, eps))
        for name, param in params.items():
            param.grad = grads[name].contiguous()  # fused Adam misreads strided grads
        self.optimizer.step()
        return bound.detach().cpu().numpy()

    def _inputs(self, x, mask, y, eps) -> list:
        """The graph's inputs: parameters (and, with Adam in the graph, its state), data."""
        params = _plain(self.params)
        if self.adam is None:
            return [params, x, mask, y, eps]
        if not self.optimizer.state:
            init_adam_state(self.optimizer)
        state = [self.optimizer.state[p] for p in self.params.values()]
        names = list(params)
        return [params, *({n: st[k] for n, st in zip(names, state, strict=True)}
                          for k in ("exp_avg", "exp_avg_sq", "step")), x, mask, y, eps]

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
            adam = self.adam

            def step(params, x, mask, y, eps):
                (grads, (_, bound)) = grad_fn(params, x, mask, y, eps)
                return grads, bound

            def step_and_update(params, exp_avg, exp_avg_sq, steps, x, mask, y, eps):
                (grads, (_, bound)) = grad_fn(params, x, mask, y, eps)
                for name, grad in grads.items():
                    adam_update(params[name], grad, exp_avg[name], exp_avg_sq[name],
                                steps[name], **adam)
                return bound

            inputs = self._inputs(x, mask, y, eps)
            # make_fx runs what it traces: on copies, so that tracing updates nothing.
            copies = torch.utils._pytree.tree_map(_copy, inputs)
            traced = make_fx(step if adam is None else step_and_update)(*copies)
            if x.device.type == "cpu" and self.transpose_narrow:
                narrow_products_transposed(traced)
            if x.device.type == "cuda":
                compiled = torch.compile(traced, mode="reduce-overhead", dynamic=False)
                compiled(*inputs)  # compile now, not inside the timing
            else:
                compiled = inductor_compiled(traced, inputs)
        except Exception as err:  # noqa: BLE001 - any failure: fall back, and say why
            say_unavailable("compiled training step", err, "training eagerly")
            self.failed = True
            return None
        finally:
            self.compile_seconds += time.perf_counter() - start
        return compiled


def say_unavailable(what: str, err: Exception, instead: str) -> None:
    """The one line said when a graph cannot be captured or compiled."""
    first = str(err).splitlines()[0][:200] if str(err) else ""
    print(f"{what} unavailable ({type(err).__name__}: {first}); {instead}", file=sys.stderr)


NARROW = 32  # output columns below which a batched matrix product is computed transposed


def narrow_products_transposed(graph: torch.fx.GraphModule) -> int:
    """Rewrite every batched matrix product C = A B (``bmm``: the replicas' layers) whose
    output is narrow (N < 32 columns, M >= 4 N rows) as C = (B^T A^T)^T, copied back to
    C's row-major layout (the graph's later views of C expect it): the same sums. On the
    CPU the BLAS library computes such a product several times faster with the wide
    output; a network's heads (128 -> D units), the latent layer and their gradients are
    such products. Unbatched products (one run) are left alone: there the copy costs more
    than it saves (``python -m notmiwae.experiments.bench --plain-products`` compares).
    Returns how many were rewritten."""
    aten = torch.ops.aten
    rewritten = 0
    for node in list(graph.graph.nodes):
        if node.op != "call_function" or node.target is not aten.bmm.default \
                or "val" not in node.meta:  # "val": shapes, on the nodes make_fx made
            continue
        rows, cols = node.meta["val"].shape[-2:]
        if not (cols < NARROW and rows >= 4 * cols):
            continue
        a, b = node.args
        with graph.graph.inserting_before(node):
            def t(arg):
                return graph.graph.call_function(aten.transpose.int, (arg, -2, -1))
            new = t(graph.graph.call_function(aten.bmm.default, (t(b), t(a))))
            new = graph.graph.call_function(
                aten.clone.default, (new,), {"memory_format": torch.contiguous_format})
        node.replace_all_uses_with(new)
        graph.graph.erase_node(node)
        rewritten += 1
    graph.graph.lint()
    graph.recompile()
    return rewritten


def inductor_compiled(traced: torch.fx.GraphModule, inputs: list) -> Callable:
    """``traced`` compiled by inductor, called with the same nested inputs. Without Dynamo
    in front, no guards are checked per call (a graph is already kept per shape).
    """
    flat, spec = torch.utils._pytree.tree_flatten(inputs)
    compiled = torch._inductor.compile(traced, flat)

    def call(*args):
        leaves, got = torch.utils._pytree.tree_flatten(list(args))
        if got != spec:
            raise ValueError("the compiled step was called with other inputs than captured")
        return compiled(*leaves)
    return call


def adam_settings(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]
                  ) -> dict | None:
    """lr, betas and eps of a plain Adam over exactly ``params`` on the CPU, whose update
    the compiled step can take into its graph; None otherwise (a GPU, another optimizer,
    weight decay, AMSGrad, several parameter groups): the optimizer then steps itself."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if (group["weight_decay"] or group["amsgrad"] or group["maximize"]
            or group.get("differentiable") or isinstance(group["lr"], torch.Tensor)
            or [id(p) for p in group["params"]] != [id(p) for p in params]
            or any(p.device.type != "cpu" for p in params)):
        return None
    beta1, beta2 = group["betas"]
    return {"lr": group["lr"], "beta1": beta1, "beta2": beta2, "eps": group["eps"]}


def init_adam_state(optimizer: torch.optim.Adam) -> None:
    """The state ``optimizer.step()`` creates on its first call: step 0, zero moments."""
    for p in optimizer.param_groups[0]["params"]:
        optimizer.state[p] = {
            "step": torch.zeros((), dtype=torch.float32, device=p.device),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}


def adam_update(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
                exp_avg_sq: torch.Tensor, step: torch.Tensor, lr: float, beta1: float,
                beta2: float, eps: float) -> None:
    """One Adam step in place (Kingma & Ba; PyTorch's ``Adam``, no weight decay):
    t <- t + 1; m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    theta <- theta - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    step.add_(1)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    correction1 = 1 - torch.pow(beta1, step)
    correction2 = 1 - torch.pow(beta2, step)
    denom = exp_avg_sq.sqrt() / correction2.sqrt() + eps
    param.sub_(lr / correction1 * exp_avg / denom)


def _copy(leaf):
    return leaf.clone() if isinstance(leaf, torch.Tensor) else leaf


def _plain(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parameters' values without autograd history: the graph computes the gradient."""
    return {name: p.detach() for name, p in params.items()}
