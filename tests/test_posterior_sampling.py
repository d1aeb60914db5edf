"""Multiple imputation by NUTS on the program's own posterior, against importance
sampling of the same posterior."""

import numpy as np
import pytest
import torch

from notmiwae.inference.imputation import multiple_impute
from notmiwae.inference.posterior_sampling import nuts_draws
from notmiwae.models.registry import build_model, config_from_name


def small_program(name="notmiwae:selfmasking_known"):
    torch.manual_seed(0)
    program = build_model(config_from_name(name, n_features=3, hidden=8)).double().eval()
    if program.missingness is not None:
        with torch.no_grad():
            program.missingness.weight.fill_(2.0)  # a steep self-masking: an MNAR tilt
    x = torch.randn(5, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 1, 0], [1, 1, 0]]).bool()
    return program, torch.where(mask, x, torch.zeros_like(x)), mask


def test_nuts_draws_match_importance_sampling_of_the_same_posterior():
    """Two samplers of p(x^m | x^o, s): NUTS's means and spreads per missing entry agree
    with SIR's from 50,000 importance samples within a few Monte Carlo errors."""
    program, x, mask = small_program()
    draws, diagnostics = nuts_draws(program, x, mask, m=400, warmup=150, thin=1, seed=1)
    reference = multiple_impute(program, x, mask, m=4000, num_samples=50_000, seed=0)
    missing = ~mask
    nuts, sir = draws[:, missing].numpy(), reference[:, missing].numpy()
    n_eff = diagnostics["x_missing"]["n_eff_p10"]
    assert n_eff > 50 and diagnostics["x_missing"]["r_hat_max"] < 1.1
    error = 4 * sir.std(0) / np.sqrt(n_eff)  # 4 Monte Carlo standard errors of NUTS's mean
    assert np.all(np.abs(nuts.mean(0) - sir.mean(0)) < error)
    assert np.allclose(nuts.std(0), sir.std(0), rtol=0.25)
    assert torch.equal(draws[:, mask], x[mask].expand(400, -1))  # observed: unchanged
    assert draws.shape == (400, 5, 3)


def test_nuts_draws_are_reproducible_from_the_seed_and_refuse_what_they_cannot_sample():
    program, x, mask = small_program()
    first, _ = nuts_draws(program, x, mask, m=5, warmup=10, thin=1, seed=3)
    again, _ = nuts_draws(program, x, mask, m=5, warmup=10, thin=1, seed=3)
    assert torch.equal(first, again)
    assert all(p.requires_grad for p in program.parameters())  # given back as they were
    with pytest.raises(ValueError, match="thin must be >= 1"):
        nuts_draws(program, x, mask, m=5, warmup=10, thin=0)
    binary = build_model(config_from_name("miwae", n_features=3, decoder="bernoulli"))
    with pytest.raises(ValueError, match="discrete x"):
        nuts_draws(binary, x.float(), mask, m=2, warmup=2)
