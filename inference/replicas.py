"""Replicas: R runs of one program trained together, as a transform of the inference.

Parts and programs are written for one run. To train the runs of seeds s, ..., s + R - 1
at once:

- :func:`stack` makes one container program whose every parameter has a leading replica
  dimension, (R, *shape): what the optimiser steps, and what snapshots save;
- :func:`replica_map` computes ``fn(program, *args)`` for every replica in one batched
  pass: ``torch.func.vmap`` over the stacked parameters, each replica's slice put in
  place by ``torch.func.functional_call``, so the single-run code runs unchanged;
- :func:`select` takes replica r back out as a single program.

Replica r then computes what the run of seed s + r computes, given its noise
(:mod:`notmiwae.inference.noise`) and minibatches; only rounding differs, because the
batched matrix products sum in another order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


def replica_count(program: nn.Module) -> int:
    """R for a stacked program, 1 for a single one."""
    return getattr(program, "replicas", 1)


def stack(programs: list[nn.Module]) -> nn.Module:
    """One program whose parameter p has shape (R, *p.shape): replica r is ``programs[r]``.

    A single program is returned as it is.
    """
    if len(programs) == 1:
        return programs[0]
    stacked = copy.deepcopy(programs[0])
    singles = [dict(p.named_parameters()) for p in programs]
    _replace_parameters(stacked, lambda name, _: torch.stack(
        [s[name].detach() for s in singles]))
    stacked.replicas = len(programs)
    return stacked


def select(program: nn.Module, r: int) -> nn.Module:
    """Replica r of a stacked program, as a single program (in eval mode)."""
    replicas = replica_count(program)
    if not 0 <= r < replicas:
        raise IndexError(f"replica {r} of a program with {replicas} replica(s)")
    if replicas == 1:
        return program
    single = copy.deepcopy(program)
    _replace_parameters(single, lambda _, param: param.detach()[r].clone())
    del single.replicas
    return single.eval()


def _replace_parameters(program: nn.Module, value: Callable[[str, torch.Tensor], torch.Tensor]
                        ) -> None:
    """Every parameter ``name`` of ``program`` becomes ``value(name, param)``: one walk."""
    for prefix, module in program.named_modules():
        for key, param in list(module._parameters.items()):
            if param is not None:
                name = f"{prefix}.{key}" if prefix else key
                module._parameters[key] = nn.Parameter(value(name, param),
                                                       requires_grad=param.requires_grad)


class _Apply(nn.Module):
    """``fn(program, *args)`` as a module's forward, for ``functional_call``."""

    def __init__(self, program: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.program = program
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.program, *args)


def replica_map(program: nn.Module, fn: Callable, *args, in_dims: tuple | None = None,
                params: dict[str, torch.Tensor] | None = None):
    """``fn(replica_r, *args_r)`` for every replica r, stacked along a new leading dim.

    ``args`` are batched over their leading dimension (R, ...) unless ``in_dims`` says
    otherwise (None for an argument shared by all replicas). ``fn`` sees a single program
    and single-run shapes; random draws other than the fed noise differ per replica.
    ``params``: the stacked parameters by name, if not the program's own (for tracing).
    """
    wrapper = _Apply(program, fn)
    params = {f"program.{name}": p for name, p in
              (program.named_parameters() if params is None else params.items())}

    def one(params_r, *args_r):
        return torch.func.functional_call(wrapper, params_r, args_r, strict=False)

    dims = (0, *(in_dims if in_dims is not None else (0,) * len(args)))
    return torch.func.vmap(one, in_dims=dims, randomness="different")(params, *args)
