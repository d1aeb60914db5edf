"""Model names, configurations and the parts they assemble."""

import math
import re

import pytest

from notmiwae.models import ModelConfig, build_model, config_from_name
from notmiwae.models.decoders import BernoulliDecoder, LinearGaussianDecoder
from notmiwae.models.missingness import SelfMaskingKnown


def test_names_build_the_documented_variants():
    miwae = build_model(config_from_name("miwae", 6))
    assert miwae.missingness is None
    assert miwae.prior.latent_dim == 5  # default D - 1
    ppca = build_model(config_from_name("notmiwae-ppca:selfmasking_known", 6))
    assert isinstance(ppca.decoder, LinearGaussianDecoder)
    assert isinstance(ppca.missingness, SelfMaskingKnown)
    assert config_from_name("notmiwae:linear", 6, latent_dim=2).latent == 2
    masked = build_model(config_from_name("masked-notmiwae-ppca:linear", 6))
    assert isinstance(masked.decoder, LinearGaussianDecoder)
    assert set(masked.guide.encoders) == {"z", "z_mask"}
    assert masked.latent_mask.prior.latent_dim == 5


def listed() -> str:
    """The missing models a name may take, as the messages list them: all but "ignorable"."""
    from notmiwae.models.registry import MISSING_MODELS

    names = sorted(m for m in MISSING_MODELS if m != "ignorable")
    assert "ignorable" not in names and "selfmasking_known" in names
    return re.escape(f"; missing models are {names}") + "$"


@pytest.mark.parametrize("name, message", [
    ("notmiwae", "^model 'notmiwae': notmiwae needs ':<missing model>'"),
    ("miwae:linear", "^model 'miwae:linear': miwae takes no ':<missing>'"),
    ("notmiwae:selfmask", "unknown missing 'selfmask'"),
    ("vae", "unknown model 'vae'"),
])
def test_bad_names_are_named(name, message):
    if message.startswith("^model"):
        message += listed()
    with pytest.raises(ValueError, match=message):
        config_from_name(name, 4)


def test_discrete_decoder_refuses_a_non_ignorable_missing_model():
    with pytest.raises(ValueError, match="^BernoulliDecoder cannot reparameterize x\\^m, which a "
                                         "non-ignorable missing model needs; use "
                                         r"missingness=None \(MIWAE\) with it$"):
        build_model(ModelConfig(n_features=3, decoder="bernoulli", missing="linear"))
    miwae = build_model(ModelConfig(n_features=3, decoder="bernoulli", missing="ignorable"))
    assert isinstance(miwae.decoder, BernoulliDecoder) and miwae.missingness is None


def test_render_traces_the_program_on_one_missing_entry_and_draws_it(tmp_path, monkeypatch):
    """``render`` gives pyro.render_model the named variant on two rows of zeros whose only
    missing entry is (0, 0), with distributions shown, and writes the suffix's format."""
    import pyro
    import torch

    from notmiwae.models import render as render_module

    calls = []

    class Graph:
        def render(self, stem, format, cleanup):
            calls.append(("render", stem, format, cleanup))

    def render_model(model, model_args, render_distributions):
        calls.append(("model", type(model.__self__.missingness).__name__, model_args,
                      render_distributions))
        return Graph()

    monkeypatch.setattr(pyro, "render_model", render_model)
    path = render_module.render("notmiwae:linear", str(tmp_path / "graph.svg"), n_features=3)
    assert path == tmp_path / "graph.svg"
    (_, name, (x, mask), distributions), drawn = calls
    assert name == "LinearMissing"  # the named variant's program
    assert distributions is True and torch.equal(x, torch.zeros(2, 3))
    assert mask.dtype == torch.bool and mask.tolist() == [[False, True, True], [True] * 3]
    assert drawn == ("render", str(tmp_path / "graph"), "svg", True)
    calls.clear()
    render_module.render("miwae", str(tmp_path / "plain"))
    assert calls[0][2][0].shape == (2, 4) and calls[1][1:3] == (str(tmp_path / "plain"), "png")

    def no_graphviz(*args, **kwargs):
        raise ImportError("no module named graphviz")

    monkeypatch.setattr(pyro, "render_model", no_graphviz)
    with pytest.raises(SystemExit, match="^rendering needs the graphviz package and program: "
                                         "no module named graphviz$"):
        render_module.render("miwae", str(tmp_path / "x.png"))


@pytest.mark.parametrize("kind, table, args", [
    ("prior", "PRIORS", "latent_dim"),
    ("decoder", "DECODERS", "latent_dim, n_features, hidden"),
    ("missing", "MISSING_MODELS", "n_features"),
])
def test_register_puts_a_factory_in_its_kinds_table_or_says_what_it_must_take(kind, table,
                                                                              args):
    from notmiwae.models import registry

    def factory(*arguments):  # takes any arguments
        return None

    table = getattr(registry, table)
    try:
        registry.register(kind, "test-part", factory)
        assert table["test-part"] is factory
        registry.register(kind, "test-part", None)  # None: a part that is left out
        assert table["test-part"] is None
        with pytest.raises(TypeError, match=f"^{kind} 'p': the factory must be callable, "
                                            "got int$"):
            registry.register(kind, "p", 3)
        with pytest.raises(TypeError, match=re.escape(f"{kind} 'p': the factory must accept "
                                                      f"({args})")):
            registry.register(kind, "p", lambda: None)
        assert "p" not in table
        with pytest.raises(ValueError, match=r"^unknown kind 'Prior'; choose from "
                                             r"\['decoder', 'missing', 'prior'\]$"):
            registry.register("Prior", "p", factory)
    finally:
        table.pop("test-part", None)
        table.pop("p", None)


def test_installed_parts_are_loaded_once_each_and_functions_called(monkeypatch):
    from notmiwae.models import registry

    loaded, groups = [], []

    class Entry:
        def __init__(self, name, value, target):
            self.name, self.value, self.target = name, value, target

        def load(self):
            loaded.append(self.name)
            return self.target

    calls = []
    entries = [Entry("module", "lab_parts", object()),  # a module: imported, not called
               Entry("function", "lab_parts:setup", lambda: calls.append("setup"))]

    def entry_points(group):
        groups.append(group)
        return entries

    monkeypatch.setattr(registry.importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_installed", set())
    registry.load_installed_parts()
    registry.load_installed_parts()  # a second time: nothing loaded again
    assert groups == ["notmiwae.parts"] * 2
    assert loaded == ["module", "function"] and calls == ["setup"]
    entries.append(Entry("function", "other:setup", lambda: calls.append("other")))
    registry.load_installed_parts()  # same name, another value: a new entry point
    assert loaded == ["module", "function", "function"] and calls == ["setup", "other"]


def test_default_sizes_of_the_parts():
    """Parts built with their defaults: 128 tanh units (the paper's), a decoder scale of
    softplus(.) + 1e-3, no latent-mask gain, a nonlinear missing model as wide as x."""
    from notmiwae.models.decoders import GaussianDecoder, StudentTDecoder
    from notmiwae.models.encoders import GaussianEncoder
    from notmiwae.models.latent_mask import LatentMask
    from notmiwae.models.missingness import NonlinearMissing, SelfMasking
    from notmiwae.models.regressor import GaussianRegressor

    def shapes(part):
        return {name: tuple(p.shape) for name, p in part.named_parameters()}

    for decoder in (GaussianDecoder(2, 3), StudentTDecoder(2, 3), BernoulliDecoder(2, 3)):
        assert shapes(decoder)["trunk.0.weight"] == (128, 2)
    assert shapes(GaussianEncoder(3, 2))["trunk.0.weight"] == (128, 3)
    mask_net = shapes(LatentMask(3, 2))
    assert mask_net["encoder.trunk.0.weight"] == (128, 3)
    assert mask_net["effect.0.0.weight"] == (128, 2)
    assert shapes(GaussianRegressor(3))["hidden.weight"] == (128, 3)
    assert shapes(NonlinearMissing(5))["net.0.weight"] == (5, 5)
    assert SelfMasking(3).gain is None and SelfMaskingKnown(3).gain is None
    for decoder in (GaussianDecoder(2, 3), StudentTDecoder(2, 3), LinearGaussianDecoder(2, 3)):
        assert decoder.min_scale == 1e-3


def test_a_program_replaces_another_programs_parameters_in_the_param_store():
    """Two programs share parameter names; running one's model puts its own tensors in
    Pyro's param store (as pyro.module would), replacing the other's."""
    import pyro
    import torch

    pyro.clear_param_store()
    first, second = (build_model(ModelConfig(n_features=3)) for _ in range(2))
    x, mask = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool)
    try:
        for program in (first, second, first):
            pyro.poutine.trace(program.model).get_trace(x, mask)
            store = pyro.get_param_store()
            for name, param in program.named_parameters():
                assert store.get_param(f"{program.name}$$${name}") is param
    finally:
        pyro.clear_param_store()


def test_a_program_pickles_before_and_after_its_guide_has_run():
    import pickle

    import torch

    program = build_model(ModelConfig(n_features=3))
    pickle.loads(pickle.dumps(program))  # the guide has kept no trace yet
    x, mask = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool)
    with program.unregistered():  # as the package's training and imputation run it
        program.guide(x, mask)
    copy = pickle.loads(pickle.dumps(program))
    assert "trace" in vars(program.guide) and "trace" not in vars(copy.guide)
    pickle.loads(pickle.dumps(copy))  # and again, from the copy that has no trace


def test_a_program_pickles_after_plain_pyro_has_registered_its_parameters():
    """Pyro's param store gives each parameter a weak reference to itself, which pickle
    cannot write: the program drops them first, and plain Pyro still trains it after."""
    import pickle

    import pyro
    import torch
    from pyro.infer import SVI, RenyiELBO

    program = build_model(ModelConfig(n_features=3))
    x, mask = torch.randn(4, 3), torch.tensor([[True, False, True]] * 4)
    svi = SVI(program.model, program.guide, pyro.optim.Adam({"lr": 1e-3}),
              RenyiELBO(alpha=0, num_particles=2, vectorize_particles=True))
    try:
        svi.step(x, mask)  # registers, and leaves the weak references on the parameters
        assert all(hasattr(p, "unconstrained") for p in program.parameters())
        copy = pickle.loads(pickle.dumps(program))
        for (name, p), (_, q) in zip(program.named_parameters(), copy.named_parameters(),
                                     strict=True):
            assert torch.equal(p, q), name
        before = {k: v.detach().clone() for k, v in program.named_parameters()}
        svi.step(x, mask)  # the store hands the references out again
        assert all(hasattr(p, "unconstrained") for p in program.parameters())
        assert any(not torch.equal(before[k], v) for k, v in program.named_parameters())
    finally:
        pyro.clear_param_store()


def test_a_program_is_named_notmiwae_and_a_latent_mask_needs_a_missing_model():
    from notmiwae.models.latent_mask import LatentMask
    from notmiwae.models.program import NotMIWAE

    program = build_model(ModelConfig(n_features=3))
    assert program.name == "notmiwae"  # its parameters' prefix in Pyro's param store
    parts = {k: getattr(program, k) for k in ("prior", "decoder", "encoder")}
    with pytest.raises(ValueError, match="^a latent mask variable needs a missing model to "
                                         "act on$"):
        NotMIWAE(**parts, missingness=None, latent_mask=LatentMask(3, 2))


def test_dense_layers_start_like_nn_linear():
    import math

    import torch

    from notmiwae.models.networks import Dense

    torch.manual_seed(0)
    layer = Dense(16, 64)
    bound = 1 / math.sqrt(16)
    for values in (layer.weight, layer.bias):
        assert values.abs().max() <= bound and values.min() < -bound / 2 < bound / 2 < values.max()


def test_factor_analysis_decoder_has_one_scale_per_feature_and_is_ppca_when_they_agree():
    import torch

    fa = build_model(ModelConfig(n_features=4, decoder="factor-analysis")).decoder
    ppca = LinearGaussianDecoder(3, 4)
    assert fa.raw_scale.shape == (4,) and ppca.raw_scale.shape == (1,)
    ppca.load_state_dict({**fa.state_dict(), "raw_scale": torch.tensor([0.3])})
    with torch.no_grad():
        fa.raw_scale.fill_(0.3)
        z = torch.randn(5, 3)
        torch.testing.assert_close(fa(z).log_prob(z @ torch.ones(3, 4)),
                                   ppca(z).log_prob(z @ torch.ones(3, 4)))
        fa.raw_scale.copy_(torch.tensor([-1.0, 0.0, 1.0, 2.0]))
        scale = torch.nn.functional.softplus(fa.raw_scale) + 1e-3
        torch.testing.assert_close(fa(z).scale, scale.expand(5, 4))


def test_shared_scale_decoders_keep_the_deep_mean_and_a_scale_free_of_z():
    import torch

    from notmiwae.models.decoders import GaussianDecoder

    shared = build_model(ModelConfig(n_features=4, decoder="gaussian-shared-scale")).decoder
    per_feature = build_model(ModelConfig(n_features=4, decoder="gaussian-feature-scale")
                              ).decoder
    assert shared.raw_scale.shape == (1,) and per_feature.raw_scale.shape == (4,)
    deep = GaussianDecoder(3, 4)
    deep.load_state_dict({k: v for k, v in shared.state_dict().items() if k != "raw_scale"},
                         strict=False)
    with torch.no_grad():
        shared.raw_scale.fill_(0.3)
        z, x = torch.randn(5, 3), torch.randn(5, 4)
        sigma = math.log1p(math.exp(0.3)) + 1e-3
        by_hand = (-0.5 * ((x - deep(z).loc) / sigma) ** 2 - math.log(sigma)
                   - 0.5 * math.log(2 * math.pi))
        torch.testing.assert_close(shared(z).log_prob(x), by_hand)
        torch.testing.assert_close(shared(2 * z).scale, torch.full((5, 4), sigma))
        per_feature.load_state_dict(shared.state_dict() | {
            "raw_scale": torch.tensor([-1.0, 0.0, 1.0, 2.0])})
        scale = torch.nn.functional.softplus(per_feature.raw_scale) + 1e-3
        torch.testing.assert_close(per_feature(z).scale, scale.expand(5, 4))
        by_hand = (-0.5 * ((x - deep(z).loc) / scale) ** 2 - scale.log()
                   - 0.5 * math.log(2 * math.pi))
        torch.testing.assert_close(per_feature(z).log_prob(x), by_hand)


@pytest.mark.parametrize("decoder", ["linear-gaussian", "factor-analysis", "gaussian-shared-scale"])
def test_free_scale_decoders_list_the_scale_before_the_mean_network(decoder):
    """A saved optimiser state lists its moments by parameter position; these decoders
    have always listed raw_scale (the module's own parameter) first, then the mean
    network, whatever the order of assignment."""
    names = [n for n, _ in build_model(ModelConfig(n_features=4, decoder=decoder)
                                       ).decoder.named_parameters()]
    assert names[0] == "raw_scale" and names[-2:] == ["loc.weight", "loc.bias"]
