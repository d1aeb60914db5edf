"""Joint supervision: p(y | x) inside the importance weights, prediction without y."""

import math

import pyro
import pytest
import torch

from notmiwae.inference.importance import iw_bound, log_importance_weights
from notmiwae.inference.imputation import (
    effective_sample_size,
    impute,
    predict_target,
    weight_overlap,
)
from notmiwae.inference.reference import reference_log_weights
from notmiwae.inference.training import TrainConfig, fit
from notmiwae.models import ModelConfig, build_model
from tests.conftest import toy_data
from tests.test_bound import grads, noise_of

K = 6


def supervised_program(missing="selfmasking_known", latent_mask=False):
    torch.manual_seed(0)
    config = ModelConfig(n_features=5, missing=missing, hidden=16, target=True,
                         target_hidden=8, latent_mask=latent_mask)
    program = build_model(config).double()
    with torch.no_grad():
        for p in program.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return program


@pytest.mark.parametrize("missing, latent_mask", [("selfmasking_known", False),
                                                  ("linear", True), ("ignorable", False)])
def test_joint_bound_and_gradient_match_hand_written_formula(missing, latent_mask):
    """w_k includes p(y | x^o, x^m_k): the regression reaches the generative model."""
    program = supervised_program(missing, latent_mask)
    x, mask, _ = toy_data()
    y = torch.randn(len(x), 1, dtype=torch.float64)
    log_w, trace = log_importance_weights(program, x, mask, K, y=y)
    iw_bound(log_w).sum().backward(retain_graph=True)
    g_pyro = grads(program)
    program.zero_grad()
    ref = reference_log_weights(program, x, mask, *noise_of(program, x, trace), y=y)
    (torch.logsumexp(ref, 0) - math.log(K)).sum().backward()
    torch.testing.assert_close(log_w, ref, rtol=0, atol=1e-6)
    for a, b in zip(g_pyro, grads(program), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # The supervised term moves the decoder and encoder, not only the regressor.
    program.zero_grad()
    y_term = trace.nodes["y"]["fn"].log_prob(y).sum()
    y_term.backward()
    assert program.decoder.loc.weight.grad.abs().sum() > 0


def test_prediction_weights_leave_y_out():
    program = supervised_program()
    x, mask, _ = toy_data()
    L = 30
    pyro.set_rng_seed(4)
    got = predict_target(program, x, mask, L, sample_chunk=L)
    pyro.set_rng_seed(4)
    with torch.no_grad():
        _, trace = log_importance_weights(program, x, mask, L)
        w = torch.softmax(reference_log_weights(program, x, mask, *noise_of(program, x, trace)),
                          0)
        f = trace.nodes["y"]["fn"].mean[..., 0]  # f(x^o, x^m_l), (L, N)
        y = torch.randn(len(x), dtype=torch.float64)
        w_y = torch.softmax(reference_log_weights(program, x, mask, *noise_of(program, x, trace),
                                                  y=y[:, None]), 0)
    torch.testing.assert_close(got, (w * f).sum(0), rtol=0, atol=1e-9)
    # Given y (a diagnostic): the same draws, p(y | x^o, x^m_l) in the weights.
    given = predict_target(program, x, mask, L, sample_chunk=L, seed=4, y=y)
    torch.testing.assert_close(given, (w_y * f).sum(0), rtol=0, atol=1e-9)
    assert not torch.allclose(given, got)


def test_imputation_given_a_known_target_weights_by_p_y():
    """impute(..., y=y): E[x^m | x^o, s, y], with p(y | x^o, x^m_l) inside the weights."""
    program = supervised_program()
    x, mask, _ = toy_data()
    y = torch.randn(len(x), dtype=torch.float64)
    L = 30
    pyro.set_rng_seed(5)
    got = impute(program, x, mask, L, sample_chunk=L, y=y)
    pyro.set_rng_seed(5)
    with torch.no_grad():
        _, trace = log_importance_weights(program, x, mask, L)  # same draws; y is latent here
        eps = noise_of(program, x, trace)
        w = torch.softmax(reference_log_weights(program, x, mask, *eps, y=y[:, None]), 0)
        x_mean = trace.nodes["x_unobserved"]["fn"].mean  # E[x | z_l], (L, N, D)
        expected = torch.where(mask, x, (w.unsqueeze(-1) * x_mean).sum(0))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)
    without = impute(program, x, mask, L, sample_chunk=L, seed=5)
    assert not torch.allclose(got, without)  # y does move the weights
    with pytest.raises(ValueError, match="3 values for 9 rows"):
        impute(program, x, mask, L, y=y[:3])


def test_effective_sample_size_given_a_known_target_in_row_blocks():
    """ESS with p(y | x^o, x^m_l) in the weights, rows in blocks of 4 (y sliced with them),
    against the hand-written weights of the same draws, block by block."""
    program = supervised_program()
    x, mask, _ = toy_data()
    y = torch.randn(len(x), dtype=torch.float64)
    L = 30
    got = effective_sample_size(program, x, mask, L, row_batch=4, sample_chunk=L, seed=6, y=y)
    pyro.set_rng_seed(6)
    expected = []
    with torch.no_grad():
        for rows in (slice(0, 4), slice(4, 8), slice(8, 9)):
            xb, mb, yb = x[rows], mask[rows], y[rows, None]
            _, trace = log_importance_weights(program, xb, mb, L, y=yb)
            w = torch.exp(reference_log_weights(program, xb, mb, *noise_of(program, xb, trace),
                                                y=yb))
            expected.append(w.sum(0) ** 2 / (w ** 2).sum(0))
    torch.testing.assert_close(got, torch.cat(expected), rtol=1e-9, atol=0)
    without = effective_sample_size(program, x, mask, L, row_batch=4, sample_chunk=L, seed=6)
    assert not torch.allclose(got, without)


def test_weight_overlap_matches_hand_written_weights_of_the_same_draws():
    """sum_l min(w~_l, w~^y_l) over the same L draws, rows in blocks of 4 and samples in
    chunks of 7 (so the normalisers span chunks), against the hand-written weights."""
    program = supervised_program()
    x, mask, _ = toy_data()
    y = torch.randn(len(x), dtype=torch.float64)
    L = 30
    got = weight_overlap(program, x, mask, L, row_batch=4, sample_chunk=7, seed=8, y=y)
    pyro.set_rng_seed(8)
    expected = []
    with torch.no_grad():
        for rows in (slice(0, 4), slice(4, 8), slice(8, 9)):
            xb, mb, yb = x[rows], mask[rows], y[rows, None]
            traces = [log_importance_weights(program, xb, mb, size)[1]
                      for size in (7, 7, 7, 7, 2)]
            eps = [None if e[0] is None else torch.cat(e)  # eps_mask is None: no z_mask
                   for e in zip(*(noise_of(program, xb, t) for t in traces), strict=True)]
            w = torch.softmax(reference_log_weights(program, xb, mb, *eps), 0)
            w_y = torch.softmax(reference_log_weights(program, xb, mb, *eps, y=yb), 0)
            expected.append(torch.minimum(w, w_y).sum(0))
    torch.testing.assert_close(got, torch.cat(expected), rtol=0, atol=1e-9)
    incomplete = ~mask.all(1)  # a complete row has one f(x) for every draw: overlap 1
    assert (got[incomplete] < 1 - 1e-3).all() and (got[incomplete] > 0).all()
    torch.testing.assert_close(got[~incomplete], torch.ones_like(got[~incomplete]))
    program.regressor.raw_scale.data.fill_(1e3)  # a flat p(y | x): y moves nothing
    torch.testing.assert_close(weight_overlap(program, x, mask, L, seed=8, y=y),
                               torch.ones_like(got), rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match="give y"):
        weight_overlap(program, x, mask, L, y=None)


def test_joint_training_fits_y_and_needs_it():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 3, generator=g)
    y = 2 * x[:, 0] - x[:, 1] + 0.1 * torch.randn(120, generator=g)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[x[:, 2] > 0.5, 2] = False
    config = ModelConfig(n_features=3, missing="selfmasking_known", hidden=32, target=True)
    train = TrainConfig(iterations=800, batch_size=16, num_particles=5, learning_rate=5e-3)
    result = fit(config, x * mask, mask, train, progress=False, y=y)
    pred = predict_target(result.program, x * mask, mask, 50, seed=0)
    # measured 0.015 against var(y) = 4.3; leaving out x1 alone would cost about 1
    assert ((pred - y) ** 2).mean() < 0.02 * y.var()
    with pytest.raises(ValueError, match="trains on y"):
        fit(config, x * mask, mask, train, progress=False)


def test_joint_replicas_equal_separate_runs():
    x, mask, _ = toy_data(n=40, d=4, dtype=torch.float32)
    y = torch.randn(40, generator=torch.Generator().manual_seed(1))
    config = ModelConfig(n_features=4, missing="linear", hidden=16, target=True, target_hidden=8)
    train = TrainConfig(iterations=25, batch_size=8, num_particles=4, seed=3)
    together = fit(config, x, mask, train, progress=False, replicas=2, y=y)
    alone = fit(config, x, mask, TrainConfig(iterations=25, batch_size=8, num_particles=4,
                                             seed=4), progress=False, y=y)
    a = torch.cat([p.detach().flatten() for p in together.replica(1).parameters()])
    b = torch.cat([p.detach().flatten() for p in alone.program.parameters()])
    torch.testing.assert_close(a, b, rtol=0, atol=2e-5)


def test_a_known_target_needs_a_program_with_a_target():
    from notmiwae.inference.imputation import impute

    program = build_model(ModelConfig(n_features=3))
    x, mask = torch.zeros(4, 3), torch.ones(4, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"^y given, but the program has no target "
                                         r"\(target=True\)$"):
        impute(program, x, mask, 5, y=torch.zeros(4))
