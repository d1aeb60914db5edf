"""Every part against its formula written out in numpy, on weights set by hand.

The bound tests compare the program with a hand-written computation that calls the
program's own networks, so a wrong formula inside a part would pass them; these tests
pin each part down on its own.
"""

import math
import re

import numpy as np
import pyro.distributions as dist
import pytest
import torch

from notmiwae.models import ModelConfig, build_model
from notmiwae.models.decoders import (
    BernoulliDecoder,
    GaussianDecoder,
    LinearGaussianDecoder,
    StudentTDecoder,
)
from notmiwae.models.encoders import GaussianEncoder
from notmiwae.models.latent_mask import LatentMask
from notmiwae.models.missingness import (
    LinearMissing,
    NonlinearMissing,
    SelfMasking,
    SelfMaskingKnown,
)
from notmiwae.models.networks import Dense, glorot_, mlp
from notmiwae.models.parts import PartError, check_part
from notmiwae.models.priors import StandardNormalPrior
from notmiwae.models.registry import DECODERS, MISSING_MODELS, PRIORS, register
from notmiwae.models.regressor import GaussianRegressor
from tests.parts import (
    dense,
    inverse_softplus,
    normal_log_pdf,
    put,
    random_dense,
    random_trunk,
    read,
    sigmoid,
    softplus,
)

D, LATENT, HIDDEN = 4, 3, 5


def rng(seed=0):
    return np.random.default_rng(seed)


def tensor(a):
    return torch.as_tensor(np.asarray(a, dtype=float))


def close(got, expected, atol=1e-12):
    np.testing.assert_allclose(torch.as_tensor(got).detach().numpy(), expected, rtol=0,
                               atol=atol)


# -- missing models ---------------------------------------------------------------------

def self_masking(cls, latent_mask=False, seed=0):
    r = rng(seed)
    part = cls(D, latent_mask=latent_mask).double()
    w, b = r.normal(size=D), r.normal(size=D)
    put(part.weight, w)
    put(part.bias, b)
    g = None
    if latent_mask:
        g = r.normal(size=D)
        put(part.gain, g)
    return part, w, b, g


def test_self_masking_logits_are_minus_w_times_x_minus_b():
    part, w, b, _ = self_masking(SelfMasking)
    x = rng(1).normal(size=(2, 6, D))  # leading dims: particles, rows
    close(part(tensor(x)), -w * (x - b))
    assert part.gain is None
    with pytest.raises(ValueError, match="latent_mask=True"):
        part(tensor(x), tensor(x))


def test_self_masking_with_a_latent_mask_adds_gain_times_shift():
    part, w, b, g = self_masking(SelfMasking, latent_mask=True)
    x, shift = rng(1).normal(size=(6, D)), rng(2).normal(size=(6, D))
    close(part(tensor(x), tensor(shift)), -w * (x - b) + g * shift)
    close(part(tensor(x)), -w * (x - b))  # no shift: the plain logits
    plain = SelfMasking(D)  # built without a latent mask: a shift is refused
    with pytest.raises(ValueError, match="^build with latent_mask=True to take a latent mask "
                                         "shift$"):
        plain(tensor(x), tensor(shift))


def test_self_masking_known_logits_use_softplus_of_w():
    part, w, b, g = self_masking(SelfMaskingKnown, latent_mask=True)
    x, shift = rng(1).normal(size=(6, D)), rng(2).normal(size=(6, D))
    close(part(tensor(x)), -softplus(w) * (x - b))
    close(part(tensor(x), tensor(shift)), -softplus(w) * (x - b) + g * shift)


@pytest.mark.parametrize("seed", range(3))
def test_self_masking_known_sign_large_values_are_more_likely_missing(seed):
    """The sign of the self-masking-known slope: whatever W, P(observed | x_j) falls as
    x_j grows (a flipped sign makes large values more likely observed)."""
    part, w, b, _ = self_masking(SelfMaskingKnown, seed=seed)
    grid = np.linspace(-3, 3, 13)[:, None] + np.zeros(D)
    p_observed = torch.sigmoid(part(tensor(grid))).detach().numpy()
    assert (np.diff(p_observed, axis=0) < 0).all()
    close(p_observed, sigmoid(-softplus(w) * (grid - b)))
    # at x_j = b_j the feature is observed with probability 1/2
    close(torch.sigmoid(part(tensor(b[None]))), np.full((1, D), 0.5))


def test_linear_missing_model_is_one_dense_layer_of_x_plus_shift():
    r = rng(3)
    part = LinearMissing(D, latent_mask=True).double()
    a, c = random_dense(part.dense, D, D, r)
    x, shift = r.normal(size=(2, 6, D)), r.normal(size=(2, 6, D))
    close(part(tensor(x)), dense(x, a, c))
    close(part(tensor(x), tensor(shift)), dense(x + shift, a, c))
    assert len(list(LinearMissing(D).parameters())) == 2  # no gain: the shift needs none


@pytest.mark.parametrize("hidden", [None, 7])
def test_nonlinear_missing_model_is_dense_tanh_dense(hidden):
    r = rng(4)
    part = NonlinearMissing(D, latent_mask=True, hidden=hidden).double()
    width = hidden or D  # the hidden layer is D wide unless given
    assert part.net[0].weight.numel() == width * D
    a1, c1 = random_dense(part.net[0], D, width, r)
    a2, c2 = random_dense(part.net[2], width, D, r)
    x, shift = r.normal(size=(6, D)), r.normal(size=(6, D))

    def logits(v):
        return dense(np.tanh(dense(v, a1, c1)), a2, c2)
    close(part(tensor(x)), logits(x))
    close(part(tensor(x), tensor(shift)), logits(x + shift))


# -- decoders ---------------------------------------------------------------------------

def test_gaussian_decoder_mean_is_linear_and_scale_is_softplus_plus_min_scale():
    r = rng(5)
    part = GaussianDecoder(LATENT, D, HIDDEN, min_scale=0.05).double()
    h = random_trunk(part.trunk, LATENT, HIDDEN, r)
    wl, bl = random_dense(part.loc, HIDDEN, D, r)
    ws, bs = random_dense(part.scale, HIDDEN, D, r)
    z = r.normal(size=(3, 6, LATENT))
    p = part(tensor(z))
    assert isinstance(p, dist.Normal) and p.batch_shape == (3, 6, D)
    close(p.loc, dense(h(z), wl, bl))
    close(p.scale, softplus(dense(h(z), ws, bs)) + 0.05)
    assert part.has_rsample
    # the default floor on the scale is 1e-3
    default = GaussianDecoder(LATENT, D, HIDDEN).double()
    put(default.scale.weight, np.zeros((D, HIDDEN)))
    put(default.scale.bias, np.full(D, -50.0))
    close(default(tensor(z)).scale, np.full((3, 6, D), 1e-3))


def test_student_t_decoder_has_df_three_plus_softplus():
    r = rng(6)
    part = StudentTDecoder(LATENT, D, HIDDEN, min_scale=0.02).double()
    h = random_trunk(part.trunk, LATENT, HIDDEN, r)
    wl, bl = random_dense(part.loc, HIDDEN, D, r)
    ws, bs = random_dense(part.scale, HIDDEN, D, r)
    wd, bd = random_dense(part.df, HIDDEN, D, r)
    z = r.normal(size=(6, LATENT))
    p = part(tensor(z))
    assert isinstance(p, dist.StudentT) and p.batch_shape == (6, D)
    close(p.df, 3 + softplus(dense(h(z), wd, bd)))
    close(p.loc, dense(h(z), wl, bl))
    close(p.scale, softplus(dense(h(z), ws, bs)) + 0.02)
    assert part.has_rsample
    x = r.normal(size=(6, D))
    nu, mu, s = 3 + softplus(dense(h(z), wd, bd)), dense(h(z), wl, bl), \
        softplus(dense(h(z), ws, bs)) + 0.02
    from scipy.stats import t
    close(p.log_prob(tensor(x)), t.logpdf(x, nu, mu, s), atol=1e-10)


def test_bernoulli_decoder_logits():
    r = rng(7)
    part = BernoulliDecoder(LATENT, D, HIDDEN).double()
    h = random_trunk(part.trunk, LATENT, HIDDEN, r)
    w, b = random_dense(part.logits, HIDDEN, D, r)
    z = r.normal(size=(2, 6, LATENT))
    p = part(tensor(z))
    assert isinstance(p, dist.Bernoulli) and p.batch_shape == (2, 6, D)
    close(p.logits, dense(h(z), w, b))
    close(p.probs, sigmoid(dense(h(z), w, b)))
    assert not part.has_rsample  # so a non-ignorable missing model refuses it


def test_linear_gaussian_decoder_is_wz_plus_b_with_one_shared_scale():
    r = rng(8)
    part = LinearGaussianDecoder(LATENT, D, min_scale=0.01).double()
    w, b = random_dense(part.loc, LATENT, D, r)
    put(part.raw_scale, [-0.4])
    z = r.normal(size=(3, 6, LATENT))
    p = part(tensor(z))
    assert isinstance(p, dist.Normal) and p.batch_shape == (3, 6, D)
    close(p.loc, dense(z, w, b))
    close(p.scale, np.full((3, 6, D), softplus(-0.4) + 0.01))
    assert part.raw_scale.numel() == 1 and part.has_rsample
    assert LinearGaussianDecoder(LATENT, D).min_scale == 1e-3


# -- encoder, latent mask, regressor, prior ---------------------------------------------

def test_encoder_mean_and_clipped_log_variance():
    r = rng(9)
    part = GaussianEncoder(D, LATENT, HIDDEN).double()
    h = random_trunk(part.trunk, D, HIDDEN, r)
    wl, bl = random_dense(part.loc, HIDDEN, LATENT, r)
    wv, bv = random_dense(part.logvar, HIDDEN, LATENT, r, scale=8.0)
    x = r.normal(size=(20, D))
    q = part(tensor(x))
    assert isinstance(q, dist.Independent) and q.event_shape == (LATENT,)
    logvar = dense(h(x), wv, bv)
    assert (logvar > 10).any() and (logvar < -10).any() and (abs(logvar) < 10).any()
    close(q.base_dist.loc, dense(h(x), wl, bl))
    close(q.base_dist.scale, np.exp(0.5 * np.clip(logvar, -10, 10)))
    z = r.normal(size=(20, LATENT))
    close(q.log_prob(tensor(z)), normal_log_pdf(z, dense(h(x), wl, bl),
                                               np.exp(0.5 * np.clip(logvar, -10, 10))).sum(-1),
          atol=1e-9)


@pytest.mark.parametrize("bias, scale", [(25.0, math.exp(5.0)), (-25.0, math.exp(-5.0)),
                                         (10.5, math.exp(5.0)), (-10.5, math.exp(-5.0)),
                                         (9.5, math.exp(4.75)), (-9.5, math.exp(-4.75))])
def test_encoder_log_variance_is_clipped_at_ten(bias, scale):
    part = GaussianEncoder(D, LATENT, HIDDEN).double()
    put(part.logvar.weight, np.zeros((LATENT, HIDDEN)))
    put(part.logvar.bias, np.full(LATENT, bias))
    close(part(torch.zeros(2, D, dtype=torch.float64)).base_dist.scale,
          np.full((2, LATENT), scale), atol=1e-9 * scale)


def test_latent_mask_network_prior_and_encoder():
    r = rng(10)
    part = LatentMask(D, 2, HIDDEN).double()
    h = random_trunk(part.effect[0], 2, HIDDEN, r)
    w, b = random_dense(part.effect[1], HIDDEN, D, r)
    z = r.normal(size=(3, 6, 2))
    close(part(tensor(z)), dense(h(z), w, b))
    prior = part.prior()
    close(prior.base_dist.loc, np.zeros(2))
    close(prior.base_dist.scale, np.ones(2))
    assert prior.event_shape == (2,)
    hq = random_trunk(part.encoder.trunk, D, HIDDEN, r)
    wq, bq = random_dense(part.encoder.loc, HIDDEN, 2, r)
    x = r.normal(size=(6, D))
    close(part.encoder(tensor(x)).base_dist.loc, dense(hq(x), wq, bq))


def test_regressor_is_relu_mlp_with_softplus_scale():
    r = rng(11)
    part = GaussianRegressor(D, HIDDEN).double()
    w1, b1 = random_dense(part.hidden, D, HIDDEN, r)
    w2, b2 = random_dense(part.out, HIDDEN, 1, r)
    put(part.raw_scale, [0.3])
    x = r.normal(size=(2, 6, D))
    p = part(tensor(x))
    assert p.batch_shape == (2, 6, 1)
    close(p.loc, dense(np.maximum(dense(x, w1, b1), 0), w2, b2))
    close(p.scale, np.full((2, 6, 1), softplus(0.3) + 1e-3))


def test_standard_normal_prior():
    prior = StandardNormalPrior(3).double()()
    assert prior.event_shape == (3,) and prior.batch_shape == ()
    z = rng(12).normal(size=(5, 3))
    close(prior.log_prob(tensor(z)), normal_log_pdf(z, 0.0, 1.0).sum(-1), atol=1e-12)


# -- initialisation ---------------------------------------------------------------------

def test_dense_initialisation_and_glorot_bounds():
    torch.manual_seed(0)
    layer = Dense(40, 30)
    w, b = read(layer.weight, 30, 40), read(layer.bias, 30)
    bound = 1 / math.sqrt(40)  # nn.Linear's default
    for values in (w, b):
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    layer.glorot_()
    w, b = read(layer.weight, 30, 40), read(layer.bias, 30)
    bound = math.sqrt(6 / 70)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert (b == 0).all()
    x = torch.randn(5, 40)
    close(layer(x).double(), dense(x.double().numpy(), w, b), atol=1e-5)


def test_self_masking_starts_at_zero_and_glorot_draws_within_its_bound():
    part = SelfMasking(30, latent_mask=True)
    for p in (part.weight, part.bias, part.gain):
        assert (read(p, 30) == 0).all()
    glorot_(part)  # through the module-wide helper
    bound = math.sqrt(6 / 31)
    for p in (part.weight, part.bias):
        values = read(p, 30)
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.8 * bound
    assert (read(part.gain, 30) == 0).all()


def test_mlp_is_n_tanh_layers():
    trunk = mlp(3, 4, n_layers=3)
    assert [type(m).__name__ for m in trunk] == ["Dense", "Tanh"] * 3
    assert trunk[0].weight.numel() == 12 and trunk[2].weight.numel() == 16
    assert len(mlp(3, 4)) == 4  # two layers by default


# -- assembly and user parts ------------------------------------------------------------

def test_build_model_wires_sizes_from_the_config():
    config = ModelConfig(n_features=5, latent_dim=2, hidden=7, decoder="studentt",
                         missing="nonlinear", latent_mask=True, mask_latent_dim=3,
                         target=True, target_hidden=6)
    program = build_model(config)
    x = torch.zeros(4, 5)
    assert program.encoder(x).event_shape == (2,)
    assert program.encoder.trunk[0].weight.numel() == 7 * 5
    assert program.prior.latent_dim == 2
    assert isinstance(program.decoder, StudentTDecoder)
    assert program.decoder(torch.zeros(4, 2)).batch_shape == (4, 5)
    assert program.decoder.trunk[0].weight.numel() == 7 * 2
    assert isinstance(program.missingness, NonlinearMissing)
    assert program.latent_mask.prior.latent_dim == 3
    assert program.latent_mask.encoder(x).event_shape == (3,)
    assert program.latent_mask.encoder.trunk[0].weight.numel() == 7 * 5
    assert program.regressor.hidden.weight.numel() == 6 * 5
    assert set(program.guide.encoders) == {"z", "z_mask"}
    assert program.guide.encoders["z_mask"] is program.latent_mask.encoder
    plain = build_model(ModelConfig(n_features=1))
    assert plain.prior.latent_dim == 1  # max(D - 1, 1)
    assert plain.latent_mask is None and plain.regressor is None
    assert set(plain.guide.encoders) == {"z"}


@pytest.mark.parametrize("kwargs, message", [
    ({"decoder": "poisson"}, "unknown decoder 'poisson'"),
    ({"missing": "probit"}, "unknown missing 'probit'"),
    ({"prior": "laplace"}, "unknown prior 'laplace'"),
    ({"n_features": 0}, "n_features must be >= 1, got 0"),
    ({"hidden": 0}, "hidden must be >= 1, got 0"),
    ({"target_hidden": 0}, "target_hidden must be >= 1"),
    ({"mask_latent_dim": 0}, "mask_latent_dim must be >= 1"),
    ({"missing": "ignorable", "latent_mask": True},
     "^latent_mask needs a non-ignorable missing model$"),
])
def test_bad_configurations_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{"n_features": 3, **kwargs})


def test_program_refuses_inconsistent_parts():
    program = build_model(ModelConfig(n_features=3, missing="ignorable"))
    with pytest.raises(ValueError, match="needs a missing model"):
        type(program)(program.prior, program.decoder, program.encoder, None,
                      latent_mask=LatentMask(3, 2, 4))


class HalfMissing(torch.nn.Module):
    """A user's missing model: logit_j = c_j - x_j / 2."""

    def __init__(self, n_features):
        super().__init__()
        self.c = torch.nn.Parameter(torch.linspace(-1, 1, n_features))

    def forward(self, x):
        return self.c - x / 2


class FixedDecoder(torch.nn.Module):
    """A user's decoder: p(x_j | z) = N(sum(z) + j, 0.5^2)."""

    def __init__(self, latent_dim, n_features, hidden):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.arange(n_features, dtype=torch.float32))

    def forward(self, z):
        return dist.Normal(z.sum(-1, keepdim=True) + self.offset, 0.5)


def test_user_parts_enter_the_program_through_the_registry(monkeypatch):
    """Parts registered by name are what the program runs: the site 's' has the user's
    logits at the merged x, the site 'x' the user's decoder at z."""
    monkeypatch.setitem(MISSING_MODELS, "placeholder", None)  # restored after the test
    monkeypatch.setitem(DECODERS, "placeholder", None)
    register("missing", "placeholder", HalfMissing)
    register("decoder", "placeholder", FixedDecoder)
    program = build_model(ModelConfig(n_features=3, decoder="placeholder",
                                      missing="placeholder"))
    assert isinstance(program.missingness, HalfMissing)
    from notmiwae.inference.importance import log_importance_weights
    x = torch.tensor([[0.5, 0.0, -1.0], [0.0, 0.0, 2.0]])
    mask = torch.tensor([[True, False, True], [False, False, True]])
    with torch.no_grad():
        _, trace = log_importance_weights(program, x, mask, 4)
    merged = trace.nodes["x"]["value"]
    z = trace.nodes["z"]["value"].squeeze(-2)
    close(trace.nodes["s"]["fn"].logits, (torch.linspace(-1, 1, 3) - merged / 2).numpy(),
          atol=1e-6)
    close(trace.nodes["x_observed"]["fn"].loc,
          (z.sum(-1, keepdim=True) + torch.arange(3.0)).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="unknown kind 'encoder'"):
        register("encoder", "x", HalfMissing)


# -- the program's weights, computed without any of its networks ------------------------

def test_log_weights_of_a_small_program_by_hand():
    """log w = log p(x^o | z) + log p(s | x^o, x^m) + log p(z) - log q(z | x^o), every
    term computed in numpy from the weights set here and the noise behind the trace."""
    from notmiwae.inference.importance import log_importance_weights

    r = rng(13)
    d, latent, hidden = 3, 2, 4
    program = build_model(ModelConfig(n_features=d, latent_dim=latent, hidden=hidden,
                                      decoder="linear-gaussian",
                                      missing="selfmasking_known")).double()
    h = random_trunk(program.encoder.trunk, d, hidden, r)
    wl, bl = random_dense(program.encoder.loc, hidden, latent, r)
    wv, bv = random_dense(program.encoder.logvar, hidden, latent, r)
    wd, bd = random_dense(program.decoder.loc, latent, d, r)
    put(program.decoder.raw_scale, [inverse_softplus(0.6 - 1e-3)])
    ws, bs = r.normal(size=d), r.normal(size=d)
    put(program.missingness.weight, ws)
    put(program.missingness.bias, bs)
    x = r.normal(size=(5, d))
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
    x = np.where(mask, x, 0.0)
    with torch.no_grad():
        log_w, trace = log_importance_weights(program, tensor(x), torch.as_tensor(mask), 7)
    z = trace.nodes["z"]["value"].squeeze(-2).numpy()  # (K, N, latent)
    x_m = trace.nodes["x_unobserved"]["value"].numpy()  # (K, N, d)
    mu, sd = dense(h(x), wl, bl), np.exp(0.5 * np.clip(dense(h(x), wv, bv), -10, 10))
    loc = dense(z, wd, bd)
    x_full = np.where(mask, x, x_m)
    logits = -softplus(ws) * (x_full - bs)
    expected = (normal_log_pdf(z, 0, 1).sum(-1) - normal_log_pdf(z, mu, sd).sum(-1)
                + np.where(mask, normal_log_pdf(x, loc, 0.6), 0).sum(-1)
                + (mask * logits - np.logaddexp(0, logits)).sum(-1))
    close(log_w, expected, atol=1e-9)


@pytest.mark.parametrize("decoder, missing, latent_mask, target", [
    ("gaussian", "linear", False, False),
    ("studentt", "selfmasking_known", False, True),
    ("gaussian", "selfmasking", True, False),
    ("gaussian", "linear", True, True),
])
def test_log_weights_of_deep_masked_and_supervised_programs_by_hand(decoder, missing,
                                                                    latent_mask, target):
    """log w = log p(x^o | z) + log p(s | x, z_mask) + log p(z) - log q(z | x^o)
    [+ log p(z_mask) - log q(z_mask | x^o)] [+ log p(y | x)], every network evaluated in
    numpy from weights set here: a bug inside a part, or in how the program composes the
    parts, changes the program's weights but not these."""
    from scipy import stats

    from notmiwae.inference.importance import log_importance_weights

    r = rng(29)
    d, latent, hidden = 3, 2, 5
    program = build_model(ModelConfig(n_features=d, latent_dim=latent, hidden=hidden,
                                      decoder=decoder, missing=missing,
                                      latent_mask=latent_mask, target=target)).double()

    def encoder(part):  # q(. | x^o): (mean, sd) as numpy functions of x
        h = random_trunk(part.trunk, d, hidden, r)
        wl, bl = random_dense(part.loc, hidden, latent, r)
        wv, bv = random_dense(part.logvar, hidden, latent, r)
        return lambda x: (dense(h(x), wl, bl),
                          np.exp(0.5 * np.clip(dense(h(x), wv, bv), -10, 10)))

    q_z = encoder(program.encoder)
    h_d = random_trunk(program.decoder.trunk, latent, hidden, r)
    w_loc, b_loc = random_dense(program.decoder.loc, hidden, d, r)
    w_sc, b_sc = random_dense(program.decoder.scale, hidden, d, r)
    if decoder == "studentt":
        w_df, b_df = random_dense(program.decoder.df, hidden, d, r)
    if latent_mask:
        q_zm = encoder(program.latent_mask.encoder)
        h_m = random_trunk(program.latent_mask.effect[0], latent, hidden, r)
        w_m, b_m = random_dense(program.latent_mask.effect[1], hidden, d, r)
    if missing == "linear":
        w_s, b_s = random_dense(program.missingness.dense, d, d, r)
    else:
        ws, bs = r.normal(size=d), r.normal(size=d)
        put(program.missingness.weight, ws)
        put(program.missingness.bias, bs)
        if latent_mask:
            gain = r.normal(size=d)
            put(program.missingness.gain, gain)
    if target:
        units = program.regressor.hidden.weight.shape[-2]  # its own width
        w_h, b_h = random_dense(program.regressor.hidden, d, units, r)
        w_o, b_o = random_dense(program.regressor.out, units, 1, r)
        put(program.regressor.raw_scale, [0.4])
    x = r.normal(size=(5, d))
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
    x = np.where(mask, x, 0.0)
    y = r.normal(size=(5, 1))
    with torch.no_grad():
        log_w, trace = log_importance_weights(program, tensor(x), torch.as_tensor(mask), 6,
                                              y=tensor(y) if target else None)
    z = trace.nodes["z"]["value"].squeeze(-2).numpy()  # (K, N, latent)
    x_full = np.where(mask, x, trace.nodes["x_unobserved"]["value"].numpy())
    h = h_d(z)
    loc, scale = dense(h, w_loc, b_loc), softplus(dense(h, w_sc, b_sc)) + 1e-3
    if decoder == "studentt":
        log_p_x = stats.t.logpdf(x, 3 + softplus(dense(h, w_df, b_df)), loc, scale)
    else:
        log_p_x = normal_log_pdf(x, loc, scale)
    mu, sd = q_z(x)
    expected = (normal_log_pdf(z, 0, 1).sum(-1) - normal_log_pdf(z, mu, sd).sum(-1)
                + np.where(mask, log_p_x, 0).sum(-1))
    shift = 0.0
    if latent_mask:
        zm = trace.nodes["z_mask"]["value"].squeeze(-2).numpy()
        mu_m, sd_m = q_zm(x)
        expected += normal_log_pdf(zm, 0, 1).sum(-1) - normal_log_pdf(zm, mu_m, sd_m).sum(-1)
        shift = dense(h_m(zm), w_m, b_m)
    if missing == "linear":
        logits = dense(x_full + shift, w_s, b_s)
    else:
        slope = softplus(ws) if missing == "selfmasking_known" else ws
        logits = -slope * (x_full - bs) + (gain * shift if latent_mask else 0.0)
    expected += (mask * logits - np.logaddexp(0, logits)).sum(-1)
    if target:
        f = dense(np.maximum(dense(x_full, w_h, b_h), 0), w_o, b_o)
        expected += normal_log_pdf(y, f, softplus(0.4) + 1e-3).sum(-1)
    close(log_w, expected, atol=1e-9)


class Returns(torch.nn.Module):
    """A part whose forward records the shapes and values it is given and returns ``out``."""

    def __init__(self, out):
        super().__init__()
        self.out, self.calls = out, []

    def forward(self, *args):
        self.calls.append([(tuple(a.shape), bool((a == 0).all())) for a in args])
        return self.out


CONTRACTS = [  # kind, how it is called (d = 4 features, d_z = 2), batch, event
    ("prior", "forward()", [], (), (2,)),
    ("decoder", "forward(z of shape (3, 2))", [(3, 2)], (3, 4), ()),
    ("encoder", "forward(x of shape (3, 4))", [(3, 4)], (3,), (2,)),
    ("regressor", "forward(x of shape (3, 4))", [(3, 4)], (3, 1), ()),
]


@pytest.mark.parametrize("kind, call, inputs, batch, event", CONTRACTS)
def test_each_kind_of_part_is_checked_against_its_contract(kind, call, inputs, batch, event):
    """A part is run once on zeros of the documented shapes; a result of the wrong type or
    of the wrong batch or event shape is refused with a message naming the part."""
    def normal(shape, event_dims):
        return dist.Normal(torch.zeros(shape), 1.0).to_event(event_dims)

    part = Returns(normal(batch + event, len(event)))
    assert check_part(kind, "p", part, n_features=4, latent_dim=2) is part
    assert part.calls == [[(shape, True) for shape in inputs]]
    label = f"{kind} 'p': {re.escape(call)}"
    with pytest.raises(PartError, match=f"^{label} returned a Tensor, not a distribution$"):
        check_part(kind, "p", Returns(torch.zeros(batch + event)), 4, 2)
    expected = re.escape(f"; expected batch {batch}, event {event}")
    with pytest.raises(PartError, match=re.escape(
            f"gave batch {batch + event + (1,)}, event ()") + expected):
        check_part(kind, "p", Returns(normal(batch + event + (1,), 0)), 4, 2)
    if event:  # the right total shape, but as batch: the event dimension is missing
        with pytest.raises(PartError, match=re.escape(
                f"gave batch {batch + event}, event ()") + expected):
            check_part(kind, "p", Returns(normal(batch + event, 0)), 4, 2)


def test_a_part_that_fails_or_is_not_a_module_is_named():
    def broken(*args):
        raise RuntimeError("boom")

    part = Returns(None)
    part.forward = broken
    with pytest.raises(PartError, match=r"^regressor 'r' failed on inputs of the documented "
                                        r"shapes \(see notmiwae.models.parts\): "
                                        r"RuntimeError: boom$"):
        check_part("regressor", "r", part, 4, 2)
    with pytest.raises(PartError, match="^missing model 'm' is a function, not an nn.Module$"):
        check_part("missing", "m", broken, 4, 2)
    with pytest.raises(PartError, match=re.escape(
            "missing model 'm': forward(x of shape (3, 4)) gave (3,); expected the logits "
            "of P(s_j = 1 | x), shape (3, 4)")):
        check_part("missing", "m", Returns(torch.zeros(3)), 4, 2)
    with pytest.raises(PartError, match="gave Normal; expected"):
        check_part("missing", "m", Returns(dist.Normal(0.0, 1.0)), 4, 2)
    logits = Returns(torch.zeros(3, 4))
    assert check_part("missing", "m", logits, 4, 2, latent_mask=True) is logits
    assert logits.calls == [[((3, 4), True), ((3, 4), True)]]  # x and the shift


def test_factory_takes_reads_the_signature():
    from notmiwae.models.parts import factory_takes

    def missing(n_features, latent_mask=False):
        return None

    assert factory_takes(missing, 3) and factory_takes(missing, 3, latent_mask=True)
    assert not factory_takes(missing, 3, gain=True) and not factory_takes(missing)
    assert not factory_takes(lambda n_features: None, 3, latent_mask=True)
    assert factory_takes(max, 1)  # a builtin without a signature to read: assumed to


def test_a_missing_model_without_a_shift_argument_cannot_take_a_latent_mask():
    class XOnly(torch.nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(PartError, match=r"^missing model 'm' has no forward\(x, shift\): it "
                                        "cannot take latent_mask=True$"):
        check_part("missing", "m", XOnly(), 4, 2, latent_mask=True)
    register("missing", "x-only", lambda n_features: XOnly())
    try:
        with pytest.raises(PartError, match="^missing model 'x-only' takes no latent_mask "
                                            "argument: it cannot take latent_mask=True"):
            build_model(ModelConfig(n_features=3, missing="x-only", latent_mask=True))
    finally:
        MISSING_MODELS.pop("x-only")


def test_build_model_checks_each_configured_part_by_its_name():
    """Each registered part is checked under the name it was configured with, and a
    missing model of a masked not-MIWAE is checked with a shift."""
    class ShiftBreaks(torch.nn.Module):  # fine without a shift, wrong shape with one
        def __init__(self, n_features, latent_mask=False):
            super().__init__()

        def forward(self, x, shift=None):
            return x if shift is None else x[:, :1]

    register("prior", "flat-prior", lambda latent_dim: Returns(torch.zeros(latent_dim)))
    register("decoder", "flat-decoder", lambda latent, d, hidden: Returns(torch.zeros(3, d)))
    register("missing", "shift-breaks", ShiftBreaks)
    try:
        for kwargs, message in (
                ({"prior": "flat-prior"}, "^prior 'flat-prior': forward\\(\\) returned a Tensor"),
                ({"decoder": "flat-decoder"}, "^decoder 'flat-decoder': forward\\(z of shape"),
                ({"missing": "shift-breaks", "latent_mask": True},
                 "^missing model 'shift-breaks': forward\\(x of shape \\(3, 3\\)\\) gave "
                 "\\(3, 1\\)")):
            with pytest.raises(PartError, match=message):
                build_model(ModelConfig(n_features=3, **kwargs))
        build_model(ModelConfig(n_features=3, missing="shift-breaks"))  # no shift: fine
    finally:
        PRIORS.pop("flat-prior")
        DECODERS.pop("flat-decoder")
        MISSING_MODELS.pop("shift-breaks")
