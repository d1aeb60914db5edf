"""Stack R single programs into one program with R replicas, and take one back out.

Every parameter of the built-in parts has a leading replica dimension (size 1 for a
single program), so stacking is a concatenation along dim 0 and selecting is a slice.
"""

from __future__ import annotations

import torch

from .program import NotMIWAE
from .registry import ModelConfig, build_model


def stack_replicas(config: ModelConfig, programs: list[NotMIWAE]) -> NotMIWAE:
    """One program whose replica r has exactly the parameters of ``programs[r]``."""
    if len(programs) == 1:
        return programs[0]
    stacked = build_model(config, replicas=len(programs))
    singles = [dict(p.named_parameters()) for p in programs]
    with torch.no_grad():
        for name, param in stacked.named_parameters():
            param.copy_(torch.cat([s[name] for s in singles]))
    return stacked.to(next(programs[0].parameters()).device)


def select_replica(config: ModelConfig, program: NotMIWAE, r: int) -> NotMIWAE:
    """Replica r of ``program`` as a single program (for imputation and checkpoints)."""
    if program.replicas == 1:
        if r != 0:
            raise IndexError(f"replica {r} of a single program")
        return program
    single = build_model(config).to(next(program.parameters()).device)
    params = dict(program.named_parameters())
    with torch.no_grad():
        for name, param in single.named_parameters():
            param.copy_(params[name][r:r + 1])
    return single.eval()
