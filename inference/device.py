"""Where tensors live: the GPU when there is one, the CPU otherwise."""

from __future__ import annotations

import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else ``cuda`` when available, else ``cpu``."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
