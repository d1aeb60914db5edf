"""R runs trained as replicas of one program equal R separate runs."""

import pytest
import torch

from notmiwae.inference.imputation import impute
from notmiwae.inference.replicas import select
from notmiwae.inference.training import TrainConfig, fit, init_program
from notmiwae.models import config_from_name
from notmiwae.models.networks import Dense
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


def test_glorot_init_is_per_seed_and_within_its_bound():
    config = config_from_name("notmiwae:selfmasking_known", 4, hidden=32)
    together = init_program(config, [3, 4], torch.device("cpu"), init="glorot")
    alone = init_program(config, [4], torch.device("cpu"), init="glorot")
    torch.testing.assert_close(params(select(together, 1)), params(alone),
                               rtol=0, atol=0)
    dense = [m for m in alone.modules() if isinstance(m, Dense)]
    assert dense
    for layer in dense:
        n_out, n_in = layer.weight.shape
        bound = (6.0 / (n_in + n_out)) ** 0.5
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.8 * bound
        assert torch.all(layer.bias == 0)
    self_masking = alone.missingness  # W, b ~ U(-a, a), a = sqrt(6 / (1 + D))
    for param in (self_masking.weight, self_masking.bias):
        assert param.abs().max() <= (6.0 / 5) ** 0.5 and param.abs().max() > 0
    default = init_program(config, [4], torch.device("cpu"))
    assert not torch.allclose(params(default), params(alone))
    with pytest.raises(ValueError, match="init must be one of"):
        TrainConfig(init="xavier")
