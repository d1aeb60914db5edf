"""R runs trained as replicas of one program equal R separate runs."""

import pytest
import torch

from inference.imputation import impute
from inference.training import TrainConfig, fit
from models import config_from_name
from tests.conftest import toy_data


def params(program):
    return torch.cat([p.detach().flatten() for p in program.parameters()])


@pytest.mark.parametrize("name", ["miwae", "notmiwae:selfmasking_known", "notmiwae-ppca:linear",
                                  "notmiwae:nonlinear", "masked-notmiwae:selfmasking"])
def test_replica_r_is_the_run_with_seed_plus_r(name):
    x, mask, _ = toy_data(n=50, d=4, dtype=torch.float32)
    config = config_from_name(name, 4, hidden=32)
    train = TrainConfig(iterations=40, batch_size=8, num_particles=5, seed=10)
    together = fit(config, x, mask, train, progress=False, replicas=3)
    assert together.history.shape == (40, 3)
    for r in range(3):
        alone = fit(config, x, mask, TrainConfig(iterations=40, batch_size=8, num_particles=5,
                                                 seed=10 + r), progress=False)
        torch.testing.assert_close(params(together.replica(r)), params(alone.program),
                                   rtol=0, atol=2e-5)
        torch.testing.assert_close(torch.as_tensor(together.history[:, r]),
                                   torch.as_tensor(alone.history), rtol=0, atol=2e-5)
        torch.testing.assert_close(impute(together.replica(r), x, mask, 30, seed=1),
                                   impute(alone.program, x, mask, 30, seed=1),
                                   rtol=0, atol=2e-5)
    # The replicas really are different runs.
    assert not torch.allclose(params(together.replica(0)), params(together.replica(1)))
