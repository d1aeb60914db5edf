"""The guide: amortized encoders for the per-row latents, the model itself for x^m."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyro.distributions as dist
from pyro.poutine.guide import GuideMessenger
from torch import nn


class AmortizedGuide(GuideMessenger):
    """q(z | x^o) p(x^m | z): an effect-based guide that runs the model once.

    Latent sites named in ``encoders`` are drawn from q(. | x~), where x~ is the model's
    first argument (x with missing entries set to 0). Every other latent site, i.e. the
    missing values ``x_unobserved``, is drawn from the model's own conditional
    p(x^m | z), so its density ratio p / q is exactly 1 and the decoder runs only once.
    """

    def __init__(self, model: Callable, encoders: Mapping[str, nn.Module]) -> None:
        super().__init__(model)
        self.encoders = dict(encoders)

    def __getstate__(self) -> dict:
        """As Pyro's, without the last trace, and also for a guide that has not run yet."""
        state = self.__dict__.copy()
        state.pop("trace", None)
        return state

    def get_posterior(self, name: str, prior: dist.Distribution) -> dist.Distribution:
        if name not in self.encoders:
            return prior
        (x_filled, *_), _ = self.args_kwargs
        # The data plate is dim -2, so a per-row latent carries a singleton feature dim.
        return self.encoders[name](x_filled.unsqueeze(-2))
