"""Multiple imputation by MCMC: draws of x^m from the program's own posterior, by NUTS.

Importance sampling (:func:`notmiwae.inference.imputation.multiple_impute`) proposes z
from the encoder; where q(z | x^o) is far from p(z | x^o, s) its weights degenerate and
the draws repeat a few samples. This samples the same posterior another way, with no
proposal: Pyro's NUTS over the latent z of every row and its missing entries x^m,

    p(z, x^m | x^o, s)  is proportional to  p(z) p(x^o, x^m | z) p(s | x^o, x^m),

the potential being minus the log density of the program's own model, conditioned on
(z, x^m) and traced (no second copy of the model). The rows are independent given the
parameters, so one chain over all of them is N chains sharing a step size and a
diagonal mass matrix, adapted in the warm-up. Kept: every ``thin``-th of ``m * thin``
draws after ``warmup``.

Needs a decoder with continuous x (not Bernoulli) and no latent target (a jointly
supervised program); the latent mask variable z_mask, where present, is sampled too.
"""

from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer.mcmc import MCMC, NUTS

from notmiwae.models.program import NotMIWAE

from .data import masked_data
from .device import flush_denormals, program_device

MISSING_SITE = "x_unobserved"  # Pyro's name for the masked-out part of the site "x"


def nuts_draws(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor, m: int = 100,
               warmup: int = 400, thin: int = 5, seed: int | None = None,
               max_tree_depth: int = 7) -> tuple[torch.Tensor, dict]:
    """m completed data sets (m, N, D), observed entries unchanged, from NUTS on
    p(z, x^m | x^o, s); and diagnostics: per latent site the median and 10% quantile of
    the effective sample size of its coordinates over the kept draws (``n_eff_median``,
    ``n_eff_p10``) and the largest split R-hat (``r_hat_max``), NaN below 4 kept draws,
    and the adapted step size.
    """
    _check_program(program)
    if m < 1 or warmup < 1 or thin < 1:
        raise ValueError(f"m, warmup and thin must be >= 1, got {m}, {warmup}, {thin}")
    home = x.device
    x, mask = masked_data(x, mask)
    device = program_device(program)
    x, mask = x.to(device), mask.to(device)
    missing = (~mask).nonzero(as_tuple=True)
    if seed is not None:
        pyro.set_rng_seed(seed)
    start = _starting_point(program, x, mask, missing)
    encoded = list(program.guide.encoders)

    def potential(params: dict[str, torch.Tensor]) -> torch.Tensor:
        values = {name: params[name] for name in encoded}
        values[MISSING_SITE] = torch.zeros_like(x).index_put(missing, params["x_missing"])
        with program.unregistered():
            trace = poutine.trace(poutine.condition(program.model, values)).get_trace(x, mask)
        return -trace.log_prob_sum()

    kernel = NUTS(potential_fn=potential, adapt_step_size=True, adapt_mass_matrix=True,
                  full_mass=False, max_tree_depth=max_tree_depth)
    mcmc = MCMC(kernel, num_samples=m * thin, warmup_steps=warmup, initial_params=start,
                disable_progbar=True)
    frozen = [p for p in program.parameters() if p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(False)
        with pyro.validation_enabled(False), flush_denormals():
            mcmc.run()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    kept = {name: values[::thin].detach() for name, values in mcmc.get_samples().items()}
    draws = x.expand(m, *x.shape).clone()
    draws[(slice(None), *missing)] = kept["x_missing"]  # (m, entries)
    return draws.to(home), _diagnostics(kept, float(kernel.step_size))


def _check_program(program: NotMIWAE) -> None:
    if program.regressor is not None:
        raise ValueError("nuts_draws samples programs without a jointly supervised target; "
                         "this one has a regressor")
    if not getattr(program.decoder, "has_rsample", True):
        raise ValueError(f"{type(program.decoder).__name__} has discrete x; NUTS needs "
                         "continuous missing values")


@torch.no_grad()
def _starting_point(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                    missing: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """Each encoded latent at the mean of its proposal q(. | x^o) (one run of the guide,
    which leaves the random state as it was), and x^m at a draw from p(x^m | z) there."""
    with program.unregistered():
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            program.guide(x, mask)
        proposal = program.guide.trace
        start = {name: proposal.nodes[name]["fn"].mean.clone()
                 for name in program.guide.encoders}
        model = poutine.trace(poutine.condition(program.model, start)).get_trace(x, mask)
    start["x_missing"] = model.nodes[MISSING_SITE]["value"][missing].clone()
    return start


def _diagnostics(samples: dict[str, torch.Tensor], step_size: float) -> dict:
    """Per site of the kept draws (one chain): n_eff quantiles and the largest R-hat."""
    out: dict = {"step_size": step_size}
    for name, values in samples.items():
        if len(values) < 4:  # split R-hat needs two halves of two draws
            out[name] = dict.fromkeys(("n_eff_median", "n_eff_p10", "r_hat_max"), np.nan)
            continue
        chain = values.unsqueeze(0)  # (chains = 1, draws, ...)
        n_eff = pyro.ops.stats.effective_sample_size(chain, chain_dim=0, sample_dim=1)
        r_hat = pyro.ops.stats.split_gelman_rubin(chain, chain_dim=0, sample_dim=1)
        n_eff = n_eff.flatten().cpu().double().numpy()
        out[name] = {"n_eff_median": float(np.nanmedian(n_eff)),
                     "n_eff_p10": float(np.nanquantile(n_eff, 0.1)),
                     "r_hat_max": float(np.nanmax(r_hat.cpu().double().numpy()))}
    return out
