"""Warnings that name the user's line: the first caller outside this package's inference
code, however deep the calls inside it go (``imputer.sample`` -> ``multiple_impute`` ->
...), where a fixed ``stacklevel`` would name a line of the package."""

from __future__ import annotations

import sys
import warnings

# Modules whose frames stand between the user and the warning: the package's inference
# code, the decorators around it (torch.no_grad, contextlib) and scikit-learn's wrappers
# (fit_transform, Pipeline).
INSIDE = ("notmiwae.inference.", "torch.utils._contextlib", "sklearn.")


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside
    ``notmiwae.inference``."""
    frame, level = sys._getframe(1), 2  # level 2: warn's caller
    while frame is not None and _inside(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _inside(module: str) -> bool:
    return module.startswith(INSIDE) or module == "contextlib"
