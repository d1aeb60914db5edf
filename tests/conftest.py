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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A briefly trained imputer saved as `notmiwae fit` saves it (RUN/imputer.pt), and a
    CSV of 2,100 rows to impute: an identifier column 'id' and 4 features, the first two
    missing above 0 (self-masking)."""
    import numpy as np
    import pandas as pd

    from notmiwae import NotMIWAEImputer

    folder = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2100, 4)) @ rng.normal(size=(4, 4))
    x[:, :2][x[:, :2] > 0] = np.nan
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(4)])
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    frame.to_csv(folder / "data.csv", index=False)
    imputer = NotMIWAEImputer(iterations=100, num_samples=20, random_state=0)
    imputer.fit(frame.set_index("id")).save(folder / "imputer.pt")
    return folder, folder / "data.csv"
