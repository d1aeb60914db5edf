"""Warnings that name the user's line: the first caller outside this package's inference
code, however deep the calls inside it go (``imputer.sample`` -> ``multiple_impute`` ->
...), where a fixed ``stacklevel`` would name a line of the package."""

from __future__ import annotations

import sys
import warnings

# Modules whose frames are the package's own calls: its inference code and the decorators
# wrapped around it (torch.no_grad, contextlib).
INSIDE = ("notmiwae.inference.", "torch.utils._contextlib", "contextlib")


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside
    ``notmiwae.inference``."""
    frame, level = sys._getframe(1), 2  # level 2: warn's caller
    while frame is not None and frame.f_globals.get("__name__", "").startswith(INSIDE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
