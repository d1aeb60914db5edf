"""The data every entry point takes: x (N, D) floats and mask (N, D), True = observed.

A missing entry of x carries no information: whatever it holds (0, NaN, or the true value
a simulation hid) is set to 0 here, so that only x^o ever reaches the encoder q(z | x^o).
"""

from __future__ import annotations

import torch


def masked_data(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x with its missing entries set to 0, mask as bool), after checking both."""
    if x.dim() != 2 or x.shape != mask.shape:
        raise ValueError(f"x {tuple(x.shape)} and mask {tuple(mask.shape)} must both be (N, D)")
    if not torch.is_floating_point(x):
        raise ValueError(f"x must hold floats, got {x.dtype}")
    mask = mask.to(x.device)
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must hold True/False (or 1/0); True = observed")
        mask = mask.bool()
    bad = mask & ~torch.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"x holds {x[row, col].item()} at an observed entry (row {row}, "
                         f"column {col}); mark a missing entry False in mask")
    return torch.where(mask, x, x.new_zeros(())), mask
