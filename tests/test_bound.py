"""The bound and its gradient against an independent hand-written computation."""

import math

import pyro
import pytest
import torch
from pyro.infer import RenyiELBO

from notmiwae.inference.importance import iw_bound, log_importance_weights
from notmiwae.inference.reference import reference_log_weights
from notmiwae.models.program import MAX_PLATE_NESTING
from tests.conftest import toy_data, toy_program

MISSING = ["ignorable", "selfmasking", "selfmasking_known", "linear", "nonlinear"]
DECODERS = ["gaussian", "linear-gaussian", "factor-analysis", "gaussian-shared-scale",
            "gaussian-feature-scale"]
VARIANTS = [(m, d, False) for m in MISSING for d in DECODERS] + \
    [(m, d, True) for m in MISSING[1:] for d in DECODERS]  # masked not-MIWAE
K = 6


def noise_of(program, x, trace):
    """The standard-normal noise behind the trace's z, x^m and z_mask (the "same samples")."""
    with torch.no_grad():
        q = program.encoder(x).base_dist
        z = trace.nodes["z"]["value"].squeeze(-2)
        p_x = program.decoder(z)
        eps_x = (trace.nodes["x_unobserved"]["value"] - p_x.loc) / p_x.scale
        eps_mask = None
        if program.latent_mask is not None:
            q_mask = program.latent_mask.encoder(x).base_dist
            eps_mask = (trace.nodes["z_mask"]["value"].squeeze(-2) - q_mask.loc) / q_mask.scale
        return (z - q.loc) / q.scale, eps_x, eps_mask


def grads(program):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for p in program.parameters()]


@pytest.mark.parametrize("missing, decoder, latent_mask", VARIANTS)
def test_bound_and_gradient_match_hand_written_formula(missing, decoder, latent_mask):
    program = toy_program(missing, decoder, latent_mask=latent_mask)
    x, mask, _ = toy_data()
    log_w, trace = log_importance_weights(program, x, mask, K)
    bound = iw_bound(log_w).sum()
    bound.backward()
    g_pyro = grads(program)
    program.zero_grad()

    ref_log_w = reference_log_weights(program, x, mask, *noise_of(program, x, trace))
    ref_bound = (torch.logsumexp(ref_log_w, 0) - math.log(K)).sum()
    ref_bound.backward()
    g_ref = grads(program)

    assert log_w.shape == (K, len(x))
    torch.testing.assert_close(log_w, ref_log_w, rtol=0, atol=1e-6)
    torch.testing.assert_close(bound, ref_bound, rtol=0, atol=1e-6)
    for a, b in zip(g_pyro, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # Every parameter of the program receives gradient from the bound.
    assert all(g.abs().sum() > 0 for g in g_ref)


@pytest.mark.parametrize("missing", MISSING)
def test_pyro_renyi_elbo_is_the_same_bound(missing):
    """RenyiELBO(alpha=0) with vectorized particles gives the same value on the same draws."""
    program = toy_program(missing)
    x, mask, _ = toy_data()
    pyro.set_rng_seed(3)
    log_w, _ = log_importance_weights(program, x, mask, K)
    pyro.set_rng_seed(3)
    elbo = RenyiELBO(alpha=0.0, num_particles=K, vectorize_particles=True,
                     max_plate_nesting=MAX_PLATE_NESTING)
    renyi = -elbo.loss(program.model, program.guide, x, mask)
    assert renyi == pytest.approx(iw_bound(log_w).sum().item(), abs=1e-8)


def test_missing_model_term_is_counted():
    """A wrong bound (dropping p(s | x)) is caught by the comparison above."""
    program = toy_program("selfmasking")
    x, mask, _ = toy_data()
    log_w, trace = log_importance_weights(program, x, mask, K)
    program_without = toy_program("selfmasking")
    program_without.missingness = None
    wrong = reference_log_weights(program_without, x, mask, *noise_of(program, x, trace))
    assert (log_w - wrong).abs().max() > 1e-2


def test_shapes_with_k_particles():
    program = toy_program("linear")
    x, mask, _ = toy_data(n=7, d=5)
    log_w, trace = log_importance_weights(program, x, mask, 11)
    assert log_w.shape == (11, 7)
    assert trace.nodes["z"]["value"].shape == (11, 7, 1, 4)
    assert trace.nodes["x_unobserved"]["value"].shape == (11, 7, 5)
    assert trace.nodes["x"]["value"].shape == (11, 7, 5)
    # The merged x holds the data where observed.
    merged = trace.nodes["x"]["value"]
    assert torch.equal(merged[:, mask], x[mask].expand(11, -1))
    # The bound is the log-mean-exp over particles, per row.
    torch.testing.assert_close(iw_bound(log_w), log_w.logsumexp(0) - math.log(11))


def test_latent_mask_terms_are_counted():
    """Leaving p(z_mask) / q(z_mask | x^o) out of the weights (a known bug) is caught."""
    program = toy_program("selfmasking", latent_mask=True)
    x, mask, _ = toy_data()
    log_w, trace = log_importance_weights(program, x, mask, K)
    site = trace.nodes["z_mask"]
    ratio = site["infer"]["prior"].log_prob(site["value"]) - site["fn"].log_prob(site["value"])
    torch.testing.assert_close(log_w, reference_log_weights(program, x, mask,
                                                            *noise_of(program, x, trace)))
    assert ratio.abs().min() > 1e-3  # so a bound without it would fail the test above


@pytest.mark.parametrize("target", [False, True])
def test_noise_drawn_ahead_is_the_single_runs_own_draws_for_every_input_shape(target):
    """ReplicatedLogWeights.noise (what the compiled step and replicas feed the program):
    fed back through FixedNoise it gives exactly the log-weights of the run drawing from
    the same generator as it goes; a new input shape (a smaller last batch, y given or
    not) gets noise of its own shape."""
    from notmiwae.inference.importance import ReplicatedLogWeights
    from notmiwae.inference.noise import FixedNoise
    from notmiwae.models import ModelConfig, build_model

    torch.manual_seed(0)
    program = build_model(ModelConfig(n_features=5, missing="linear", hidden=8,
                                      latent_mask=True, target=target)).double()
    ahead = ReplicatedLogWeights(program, 4, [torch.Generator().manual_seed(3)])
    going = torch.Generator().manual_seed(3)
    for n in (9, 6, 9):
        x, mask, _ = toy_data(n=n)
        y = torch.randn(n, 1, dtype=x.dtype) if target else None
        eps = ahead.noise(x[None], mask[None], None if y is None else y[None])
        with torch.no_grad(), FixedNoise({k: v[0] for k, v in eps.items()}):
            fed, _ = log_importance_weights(program, x, mask, 4, y=y)
        with torch.no_grad():
            expected, _ = log_importance_weights(program, x, mask, 4, noise=going, y=y)
        torch.testing.assert_close(fed, expected, rtol=0, atol=0)


def test_replicated_log_weights_are_each_replicas_single_run():
    """R = 2 stacked replicas in one batched pass: replica r's log-weights are those of
    replica r run alone with its own generator and its own rows."""
    from notmiwae.inference.importance import ReplicatedLogWeights
    from notmiwae.inference.replicas import select
    from notmiwae.inference.training import init_program
    from notmiwae.models import ModelConfig

    config = ModelConfig(n_features=5, missing="selfmasking", hidden=8, latent_mask=True)
    stacked = init_program(config, [3, 4], torch.device("cpu")).double()
    together = ReplicatedLogWeights(stacked, 6, [torch.Generator().manual_seed(s)
                                                 for s in (3, 4)])
    x0, m0, _ = toy_data(n=7, seed=0)
    x1, m1, _ = toy_data(n=7, seed=1)
    with torch.no_grad():
        log_w = together(torch.stack([x0, x1]), torch.stack([m0, m1]))
        for r, (x, m) in enumerate(((x0, m0), (x1, m1))):
            alone, _ = log_importance_weights(select(stacked, r), x, m, 6,
                                              noise=torch.Generator().manual_seed(3 + r))
            torch.testing.assert_close(log_w[r], alone, rtol=1e-10, atol=1e-10)


def test_a_site_outside_the_data_plate_is_named():
    """A part whose site's log-density lacks the (particles, rows, features) dims (a site
    sampled outside the data plate) is refused with its shape and the likely cause."""
    from notmiwae.inference.importance import _per_row

    with pytest.raises(ValueError, match=r"^site log-density has shape \(3, 4\); expected "
                                         r"\(particles, rows, features\): is every site "
                                         r"inside the data plate\?$"):
        _per_row(torch.zeros(3, 4))
    assert _per_row(torch.ones(2, 3, 4)).shape == (2, 3)
