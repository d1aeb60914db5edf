"""Draw a variant's graphical model with ``pyro.render_model`` (needs Graphviz).

    notmiwae render --model notmiwae:selfmasking_known --out docs/graphical-model.png
"""

from __future__ import annotations

from pathlib import Path

import pyro
import torch

from .registry import build_model, config_from_name


def render(model_name: str, out: str, n_features: int = 4) -> Path:
    """Trace the program on a tiny batch with one missing entry and draw it."""
    program = build_model(config_from_name(model_name, n_features))
    x = torch.zeros(2, n_features)
    mask = torch.ones(2, n_features, dtype=torch.bool)
    mask[0, 0] = False
    try:
        graph = pyro.render_model(program.model, model_args=(x, mask),
                                  render_distributions=True)
    except ImportError as err:
        raise SystemExit(f"rendering needs the graphviz package and program: {err}") from None
    path = Path(out)
    graph.render(str(path.with_suffix("")), format=path.suffix.lstrip(".") or "png",
                 cleanup=True)
    return path
