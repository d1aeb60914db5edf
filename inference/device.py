"""Where tensors live: the GPU when there is one, the CPU otherwise."""

from __future__ import annotations

from contextlib import contextmanager

import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else ``cuda`` when available, else ``cpu``."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def flush_denormals():
    """Treat denormal floats as zero on the CPU while inside (TensorFlow's default too).

    Tiny importance weights and mixture responsibilities produce denormals, which the
    CPU handles tens of times more slowly; PyTorch's default (off) is restored after.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
