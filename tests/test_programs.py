"""Parts and programs: the contract of each part, users' parts everywhere (replicas, the
latent mask, the independent bound check), and a program that plain Pyro SVI trains."""

import copy
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro.infer import SVI, RenyiELBO
from torch import nn

from notmiwae.inference.importance import iw_bound, log_importance_weights
from notmiwae.inference.noise import GeneratorNoise, generators
from notmiwae.inference.reference import reference_log_weights
from notmiwae.inference.training import TrainConfig, _iw_step, fit, make_optimizer
from notmiwae.inference.user_parts import load_parts
from notmiwae.models import ModelConfig, NotMIWAE, build_model, config_from_name
from notmiwae.models.decoders import GaussianDecoder
from notmiwae.models.encoders import GaussianEncoder
from notmiwae.models.missingness import SelfMasking, SelfMaskingKnown
from notmiwae.models.parts import MissingModel, PartError
from notmiwae.models.priors import StandardNormalPrior
from notmiwae.models.registry import MISSING_MODELS, PRIORS, register
from tests.conftest import toy_data
from tests.test_bound import K, grads, noise_of

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_parts.py"


@pytest.fixture
def user_parts():
    """The example's mixture prior and quadratic missing model, registered (the file is
    imported once per process, as the command line does)."""
    load_parts([str(EXAMPLE)])
    assert "mixture" in PRIORS and "quadratic" in MISSING_MODELS


def params(program):
    return torch.cat([p.detach().flatten() for p in program.parameters()]).cpu()


@pytest.mark.parametrize("latent_mask", [False, True])
def test_users_parts_train_as_replicas_equal_to_single_runs(user_parts, latent_mask):
    x, mask, _ = toy_data(n=40, d=4, dtype=torch.float32)
    config = ModelConfig(n_features=4, prior="mixture", missing="quadratic", hidden=16,
                         latent_mask=latent_mask)
    train = dict(iterations=15, batch_size=8, num_particles=4)
    together = fit(config, x, mask, TrainConfig(seed=5, **train), progress=False, replicas=2)
    for r in range(2):
        alone = fit(config, x, mask, TrainConfig(seed=5 + r, **train), progress=False)
        torch.testing.assert_close(params(together.replica(r)), params(alone.program),
                                   rtol=0, atol=2e-5)
    assert not torch.allclose(params(together.replica(0)), params(together.replica(1)))


@pytest.mark.parametrize("latent_mask", [False, True])
def test_bound_check_covers_a_registered_prior_and_missing_model(user_parts, latent_mask):
    """The hand-written bound takes log p(z) from the prior: a learned mixture is checked."""
    torch.manual_seed(1)
    config = ModelConfig(n_features=5, prior="mixture", missing="quadratic", hidden=16,
                         latent_mask=latent_mask)
    program = build_model(config).double()
    with torch.no_grad():
        for p in program.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, mask, _ = toy_data()
    log_w, trace = log_importance_weights(program, x, mask, K)
    iw_bound(log_w).sum().backward()
    g_pyro = grads(program)
    program.zero_grad()
    ref = reference_log_weights(program, x, mask, *noise_of(program, x, trace))
    (torch.logsumexp(ref, 0) - math.log(K)).sum().backward()
    torch.testing.assert_close(log_w, ref, rtol=0, atol=1e-6)
    for a, b in zip(g_pyro, grads(program), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_plain_pyro_svi_takes_the_same_steps_as_the_packages_own():
    """SVI(program.model, program.guide, Adam, RenyiELBO(alpha=0)) trains the program: the
    networks register themselves with Pyro. SVI's loss sums over the B rows where the
    package's is a mean: Adam's update m / (sqrt(v) + eps) is the same for gradients B
    times larger with an eps B times larger, so the steps agree to rounding."""
    x, mask, _ = toy_data(n=12, d=4)
    pyro.set_rng_seed(3)
    own = build_model(config_from_name("notmiwae:selfmasking_known", 4, hidden=16)).double()
    plain = copy.deepcopy(own)
    start = params(own).clone()
    step = _iw_step(own, TrainConfig(num_particles=5), generators([7]),
                    make_optimizer(own, 1e-2))
    pyro.clear_param_store()
    svi = SVI(plain.model, plain.guide, pyro.optim.Adam({"lr": 1e-2, "eps": 1e-8 * len(x)}),
              RenyiELBO(alpha=0.0, num_particles=5, vectorize_particles=True,
                        max_plate_nesting=2))
    noise = generators([7])[0]
    for _ in range(5):
        step(x[None], mask[None])
        with GeneratorNoise(noise):
            svi.step(x, mask)
    assert set(pyro.get_param_store().keys()) == {f"notmiwae$$${n}"
                                                  for n, _ in plain.named_parameters()}
    assert (params(plain) - start).abs().min() > 0  # SVI moved every parameter
    torch.testing.assert_close(params(plain), params(own), rtol=0, atol=1e-10)


def test_a_stale_param_store_entry_is_replaced_by_the_programs_own_parameter():
    first = build_model(config_from_name("miwae", 3, hidden=8))
    second = build_model(config_from_name("miwae", 3, hidden=8))
    pyro.clear_param_store()
    first.register_params()
    second.register_params()  # same names: the store must now hold second's tensors
    for name, param in second.named_parameters():
        assert pyro.param(f"notmiwae$$${name}") is param


def test_fit_trains_a_program_built_by_hand_and_a_builder_with_replicas():
    x, mask, _ = toy_data(n=30, d=4, dtype=torch.float32)

    def build():
        return NotMIWAE(StandardNormalPrior(2), GaussianDecoder(2, 4, 16),
                        GaussianEncoder(4, 2, 16), SelfMaskingKnown(4))

    train = TrainConfig(iterations=10, batch_size=8, num_particles=4, seed=2)
    by_hand = build()
    before = params(by_hand).clone()
    result = fit(by_hand, x, mask, train, progress=False)
    assert result.program is by_hand and result.model_config is None
    assert not torch.equal(params(by_hand), before)
    together = fit(build, x, mask, train, progress=False, replicas=2)
    alone = fit(build, x, mask, TrainConfig(iterations=10, batch_size=8, num_particles=4,
                                            seed=3), progress=False)
    torch.testing.assert_close(params(together.replica(1)), params(alone.program),
                               rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="replicas need a ModelConfig"):
        fit(build(), x, mask, train, progress=False, replicas=2)
    with pytest.raises(ValueError, match="no ModelConfig"):
        result.save("unused.pt")


class NoShift(MissingModel):
    def __init__(self, n_features, latent_mask=False):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n_features))

    def forward(self, x):
        return self.w * x


class WrongShape(nn.Module):
    def __init__(self, n_features):
        super().__init__()

    def forward(self, x):
        return x.sum(-1)


def test_parts_that_break_their_contract_are_named():
    register("missing", "noshift", NoShift)
    register("missing", "wrongshape", WrongShape)
    try:
        with pytest.raises(PartError, match="missing model 'noshift' has no forward"
                                            r"\(x, shift\): it cannot take latent_mask=True"):
            build_model(ModelConfig(n_features=3, missing="noshift", latent_mask=True))
        build_model(ModelConfig(n_features=3, missing="noshift"))  # fine without it
        with pytest.raises(PartError, match="missing model 'wrongshape': forward"):
            build_model(ModelConfig(n_features=3, missing="wrongshape"))
        with pytest.raises(PartError, match="takes no latent_mask argument"):
            build_model(ModelConfig(n_features=3, missing="wrongshape", latent_mask=True))
    finally:
        MISSING_MODELS.pop("noshift")
        MISSING_MODELS.pop("wrongshape")
    with pytest.raises(TypeError, match=r"decoder 'flat': the factory must accept "
                                        r"\(latent_dim, n_features, hidden\)"):
        register("decoder", "flat", lambda latent: None)
    with pytest.raises(ValueError, match="unknown prior 'nope'; choose from"):
        ModelConfig(n_features=3, prior="nope")


def test_installed_packages_declare_parts_by_entry_point(tmp_path, monkeypatch):
    (tmp_path / "lab_parts.py").write_text(
        "from notmiwae.models.registry import register\n"
        "from notmiwae.models.missingness import SelfMasking\n"
        "register('missing', 'lab-selfmasking', SelfMasking)\n")
    info = tmp_path / "lab_parts-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-parts\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[notmiwae.parts]\nlab = lab_parts\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        config = ModelConfig(n_features=3, missing="lab-selfmasking")  # loads it on demand
        assert type(build_model(config).missingness) is SelfMasking
    finally:
        MISSING_MODELS.pop("lab-selfmasking", None)


def test_users_parts_on_the_command_line_fit_impute_check(tmp_path):
    """notmiwae fit --parts FILE --config ... then impute and check, which load the parts
    the run recorded; a [parts] table in the TOML does the same; a part file gone is named."""
    from notmiwae.inference.cli import main

    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    data.loc[data["a"] > 0.5, "a"] = np.nan
    csv = tmp_path / "data.csv"
    data.to_csv(csv, index=False)
    parts = tmp_path / "my_parts.py"
    shutil.copy(EXAMPLE, parts)
    config = tmp_path / "model.toml"
    config.write_text('[model]\nprior = "mixture"\nmissing = "quadratic"\nlatent_mask = true\n'
                      'hidden = 16\n[training]\niterations = 20\n[imputation]\n'
                      'num_samples = 20\n')
    run = tmp_path / "run"
    assert main(["fit", str(csv), "--parts", str(parts), "--config", str(config),
                 "--out", str(run)]) == 0
    assert str(parts.resolve()) in (run / "config.toml").read_text()
    out = tmp_path / "imputed.csv"
    assert main(["impute", str(csv), "--run", str(run), "--out", str(out)]) == 0
    assert pd.read_csv(out).notna().all().all()
    assert main(["check", str(csv), "--run", str(run), "--out", str(tmp_path / "checks"),
                 "--replicates", "3"]) == 0
    # The same through a [parts] table, the file named relative to the config.
    config.write_text(config.read_text() + '[parts]\nmodules = ["my_parts.py"]\n')
    assert main(["fit", str(csv), "--config", str(config), "--out", str(tmp_path / "b")]) == 0
    parts.rename(tmp_path / "moved.py")
    assert main(["impute", str(csv), "--run", str(run), "--out", str(out)]) == 2


def test_a_part_file_gone_is_named(tmp_path, capsys):
    from notmiwae.inference.cli import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "imputer.pt").write_bytes(b"")
    (tmp_path / "run" / "run.json").write_text('{"parts": ["/nowhere/my_parts.py"]}')
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    assert main(["impute", str(tmp_path / "d.csv"), "--run", str(tmp_path / "run"),
                 "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "parts file not found: /nowhere/my_parts.py" in err and "--parts" in err
