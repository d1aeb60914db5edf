import pyro
import pytest
import torch

from notmiwae.models import ModelConfig, build_model


@pytest.fixture(autouse=True)
def _seed():
    pyro.set_rng_seed(0)
    yield


def toy_data(n: int = 9, d: int = 5, seed: int = 0, dtype=torch.float64):
    """x with missing entries set to 0, and its mask (True = observed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    mask = torch.rand(n, d, generator=g) > 0.35
    mask[0] = True  # a complete row
    mask[1, :] = False  # an empty row
    return x * mask, mask, x


def toy_program(missing: str = "selfmasking", decoder: str = "gaussian", d: int = 5,
                hidden: int = 16, seed: int = 0, latent_mask: bool = False):
    torch.manual_seed(seed)
    config = ModelConfig(n_features=d, missing=missing, decoder=decoder, hidden=hidden,
                         latent_mask=latent_mask)
    program = build_model(config).double()
    # Move the missing-model weights off their zero initialisation, so every term matters.
    with torch.no_grad():
        for p in program.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return program
