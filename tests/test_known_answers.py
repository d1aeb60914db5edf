"""Imputation end to end on models whose answers are known exactly (see tests/known.py).

Single imputation (both estimators), multiple-imputation draws (their mean and spread,
row by row), the posterior predictive checks and the scikit-learn imputer (on the
original scale) are compared with the closed-form Gaussian conditional (ignorable
missingness) or with quadrature (self-masking MNAR). Tolerances are about four Monte
Carlo standard errors of each estimate at the fixed seeds used; the bugs these tests
exist for move the answers by many times more.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from notmiwae.inference import checks
from notmiwae.inference.imputation import impute, multiple_impute
from notmiwae.inference.imputer import NotMIWAEImputer
from notmiwae.inference.training import FitResult
from tests.known import (
    Linear1D,
    gaussian_conditional,
    latent_posterior,
    replicated_missing_rate,
    self_masking_posterior,
)
from tests.parts import inverse_softplus, put

# Ignorable: three features, rows with one, two and three features missing.
MAR = Linear1D(w=(1.2, -0.8, 0.5), b=(0.3, -0.2, 0.1), sigma=0.6)
MAR_X = np.array([[1.5, 0, 0], [0, 1.0, 0], [-1.2, 0, 0.9], [0, 0, 0], [0, -1.4, 0],
                  [2.0, 0, -0.5], [0.4, -0.3, 1.1]])
MAR_OBSERVED = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 1],
                         [1, 1, 1]], dtype=bool)

# Self-masking MNAR: feature 0 hidden by its own value (slope softplus(W_0) = 2, large
# values missing), feature 1 observed in every row below.
MNAR = Linear1D(w=(1.0, 0.9), b=(0.0, 0.1), sigma=0.5,
                mask_weight=(inverse_softplus(2.0), 0.3), mask_bias=(0.2, 1.0))
MNAR_X = np.array([[0.0, -1.5], [0.0, -0.5], [0.0, 0.5], [0.0, 1.5], [0.7, 0.2]])
MNAR_OBSERVED = np.array([[0, 1], [0, 1], [0, 1], [0, 1], [1, 1]], dtype=bool)


def gaussian_answers(x, observed):
    """Per row, mean and sd of p(x^m | x^o) in place of the missing entries (observed
    entries: the data, sd 0)."""
    mean, sd = x.astype(float).copy(), np.zeros(x.shape)
    for i, (row, o) in enumerate(zip(x, observed, strict=True)):
        if not o.all():
            m, c = gaussian_conditional(MAR, row, o)
            mean[i, ~o], sd[i, ~o] = m, np.sqrt(np.diag(c))
    return mean, sd


def mnar_answers(x, observed):
    """Per row with feature 0 missing, its posterior moments by quadrature."""
    return {i: self_masking_posterior(MNAR, row, o)
            for i, (row, o) in enumerate(zip(x, observed, strict=True)) if not o.all()}


def tensors(x, observed):
    return torch.tensor(np.where(observed, x, 0.0)), torch.tensor(observed)


# -- single imputation -------------------------------------------------------------------

@pytest.mark.parametrize("estimator, tol", [("mean", 0.05), ("sample", 0.08)])
def test_single_imputation_is_the_gaussian_conditional_mean(estimator, tol):
    """Ignorable missingness: both estimators converge to E[x^m | x^o]."""
    x, mask = tensors(MAR_X, MAR_OBSERVED)
    got = impute(MAR.program(), x, mask, 5000, estimator=estimator, seed=1).numpy()
    expected, _ = gaussian_answers(MAR_X, MAR_OBSERVED)
    np.testing.assert_array_equal(got[MAR_OBSERVED], MAR_X[MAR_OBSERVED])
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol)


@pytest.mark.parametrize("estimator", ["mean", "sample"])
def test_single_imputation_under_self_masking_matches_quadrature(estimator):
    """MNAR, self-masking known: "sample" converges to E[x^m | x^o, s], "mean" to
    E[w z + b | x^o, s]; both lie above what ignoring the mechanism would give. With the
    sign of the self-masking-known slope flipped (large values then more likely
    observed) every answer moves by 0.3 or more, below the ignorable answer."""
    x, mask = tensors(MNAR_X, MNAR_OBSERVED)
    got = impute(MNAR.program(), x, mask, 5000, estimator=estimator, seed=2,
                 sample_chunk=1000).numpy()
    answers = mnar_answers(MNAR_X, MNAR_OBSERVED)
    for i, moments in answers.items():
        expected = moments.x_mean if estimator == "sample" else moments.decoder_mean
        assert got[i, 0] == pytest.approx(expected, abs=0.07), (i, moments)
    np.testing.assert_array_equal(got[MNAR_OBSERVED], MNAR_X[MNAR_OBSERVED])


# -- multiple imputation -----------------------------------------------------------------

M = 400


@pytest.fixture(scope="module")
def mar_draws():
    x, mask = tensors(MAR_X, MAR_OBSERVED)
    return multiple_impute(MAR.program(), x, mask, m=M, num_samples=4000, seed=4).numpy()


@pytest.fixture(scope="module")
def mnar_draws():
    x, mask = tensors(MNAR_X, MNAR_OBSERVED)
    return multiple_impute(MNAR.program(), x, mask, m=M, num_samples=4000, seed=5).numpy()


def test_multiple_imputation_keeps_observed_values(mar_draws, mnar_draws):
    assert mar_draws.shape == (M, *MAR_X.shape)
    np.testing.assert_array_equal(mar_draws[:, MAR_OBSERVED],
                                  np.broadcast_to(MAR_X[MAR_OBSERVED], (M, MAR_OBSERVED.sum())))
    np.testing.assert_array_equal(mnar_draws[:, MNAR_OBSERVED],
                                  np.broadcast_to(MNAR_X[MNAR_OBSERVED],
                                                  (M, MNAR_OBSERVED.sum())))


def test_multiple_imputation_row_i_draws_from_row_i_posterior(mar_draws, mnar_draws):
    """Each row's draws centre on that row's own posterior mean (rows here differ by
    far more than the tolerance, so drawing from another row's posterior fails)."""
    mean, sd = gaussian_answers(MAR_X, MAR_OBSERVED)
    missing = ~MAR_OBSERVED
    error = np.abs(mar_draws.mean(0) - mean)[missing]
    assert (error < 4 * sd[missing] / np.sqrt(M)).all(), error
    for i, moments in mnar_answers(MNAR_X, MNAR_OBSERVED).items():
        assert mnar_draws[:, i, 0].mean() == pytest.approx(
            moments.x_mean, abs=4 * moments.x_sd / np.sqrt(M)), i


def test_multiple_imputation_spread_is_that_of_draws_not_decoder_means(mar_draws,
                                                                       mnar_draws):
    """The draws' spread is sd(x^m | x^o, s), noise included: drawing the decoder means
    E[x^m | z_l] instead gives only the spread of w z, about half of it here."""
    _, sd = gaussian_answers(MAR_X, MAR_OBSERVED)
    missing = ~MAR_OBSERVED
    np.testing.assert_allclose(mar_draws.std(0)[missing], sd[missing], rtol=0.15)
    for i, moments in mnar_answers(MNAR_X, MNAR_OBSERVED).items():
        # 7%: two standard errors of an sd from 400 draws; measured within 2.3%. Ignoring
        # the mechanism would give the Gaussian conditional's sd, 0.697, 9-17% off.
        assert mnar_draws[:, i, 0].std() == pytest.approx(moments.x_sd, rel=0.07), i
    # Two missing features of one row covary as the conditional covariance says.
    _, cov = gaussian_conditional(MAR, MAR_X[0], MAR_OBSERVED[0])
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert np.corrcoef(mar_draws[:, 0, 1], mar_draws[:, 0, 2])[0, 1] == pytest.approx(
        corr, abs=0.15)


# -- posterior predictive checks ---------------------------------------------------------

def test_predictive_checks_condition_on_the_resampled_latents(monkeypatch):
    """x_rep is drawn from p(x | z) at the z that replication resampled from the posterior
    (with a near-zero decoder noise, x_rep = w z + b for that very z), and those z follow
    p(z | x^o), not the prior."""
    program = MAR.program()
    put(program.decoder.raw_scale, [-40.0])  # sigma = 1e-3 (the floor)
    seen = {}
    original = checks._posterior_latents

    def spy(*args):
        seen.update(original(*args))
        return dict(seen)
    monkeypatch.setattr(checks, "_posterior_latents", spy)
    x, mask = tensors(MAR_X, MAR_OBSERVED)
    x_rep, s_rep = checks.replicate(program, x, mask, num_replicates=300, num_samples=3000,
                                    seed=6)
    assert x_rep.shape == (300, *MAR_X.shape) and s_rep.all()  # ignorable: all observed
    z = seen["z"].squeeze(-2).numpy()  # (S, N, 1)
    np.testing.assert_allclose(x_rep.numpy(), z * np.array(MAR.w) + np.array(MAR.b),
                               rtol=0, atol=6e-3)
    # The resampled z follow p(z | x^o) with sigma = 1e-3 ... (a near-degenerate posterior
    # for rows with an observed entry): check the spread-free rows against it.
    sharp = Linear1D(w=MAR.w, b=MAR.b, sigma=1e-3)
    for i, (row, o) in enumerate(zip(MAR_X, MAR_OBSERVED, strict=True)):
        mean, var = latent_posterior(sharp, row, o)
        if o.any():
            assert z[:, i, 0].mean() == pytest.approx(mean, abs=0.02), i
        else:  # no observed entry: the prior
            assert z[:, i, 0].mean() == pytest.approx(0.0, abs=0.25)
            assert z[:, i, 0].std() == pytest.approx(1.0, rel=0.2)


def test_predictive_checks_replicate_from_the_posterior_not_the_prior():
    """With the decoder's own noise, each row's replicated x centres on w E[z | x^o] + b
    with variance w^2 Var[z | x^o] + sigma^2."""
    x, mask = tensors(MAR_X, MAR_OBSERVED)
    x_rep, _ = checks.replicate(MAR.program(), x, mask, num_replicates=400,
                                num_samples=3000, seed=7)
    w, b = np.array(MAR.w), np.array(MAR.b)
    for i, (row, o) in enumerate(zip(MAR_X, MAR_OBSERVED, strict=True)):
        mean, var = latent_posterior(MAR, row, o)
        sd = np.sqrt(w ** 2 * var + MAR.sigma ** 2)
        np.testing.assert_allclose(x_rep[:, i].numpy().mean(0), w * mean + b, rtol=0,
                                   atol=4 * sd.max() / np.sqrt(400))
        np.testing.assert_allclose(x_rep[:, i].numpy().std(0), sd, rtol=0.15)


# -- the scikit-learn imputer, on the original scale -------------------------------------

ORIGINAL_MEAN, ORIGINAL_SD = np.array([50.0, -3.0]), np.array([10.0, 0.2])


@pytest.fixture(scope="module")
def frame():
    """Original-scale data: feature 0 missing in 8 rows, 6 complete rows."""
    x2 = np.linspace(-1.6, 1.8, 14)
    x1 = 0.9 * x2 + np.linspace(-0.5, 0.5, 14)
    values = np.stack([x1, x2], 1) * ORIGINAL_SD + ORIGINAL_MEAN
    values[[0, 2, 4, 6, 8, 10, 12, 13], 0] = np.nan
    return pd.DataFrame(values, columns=["hidden", "seen"])


@pytest.fixture
def injected(frame, monkeypatch):
    """An imputer whose training returns the MNAR program, checking what it was given."""
    def fake_fit(config, x, mask, train, device=None, progress=True, **_snapshots):
        values = frame.to_numpy()
        standard = (values - np.nanmean(values, 0)) / np.nanstd(values, 0)
        np.testing.assert_allclose(x.numpy(), np.nan_to_num(standard), atol=1e-6)
        assert torch.equal(mask, torch.tensor(~np.isnan(values)))
        assert config == MNAR.config() and train.iterations == 1
        return FitResult(MNAR.program(torch.float32), config, train, np.zeros(1))
    monkeypatch.setattr("notmiwae.inference.imputer.fit", fake_fit)
    return NotMIWAEImputer(decoder="linear-gaussian", latent_dim=1, hidden=2, iterations=1,
                           num_samples=5000, random_state=0).fit(frame)


def standardised(frame):
    values = frame.to_numpy()
    mean, sd = np.nanmean(values, 0), np.nanstd(values, 0)
    return (values - mean) / sd, mean, sd


def test_imputer_returns_imputations_on_the_original_scale(frame, injected):
    """transform: the model's answer, computed on the standardised scale, mapped back as
    mean + sd * answer (feature 0 is around 50 with sd 10 here: an imputation left on the
    standardised scale would be near 0)."""
    x, mean, sd = standardised(frame)
    observed = ~np.isnan(x)
    answers = mnar_answers(np.nan_to_num(x), observed)
    out = injected.transform(frame)
    np.testing.assert_array_equal(out[observed], frame.to_numpy()[observed])
    for i, moments in answers.items():
        assert out[i, 0] == pytest.approx(mean[0] + sd[0] * moments.decoder_mean,
                                          abs=0.07 * sd[0]), i
    sample = injected.set_params(estimator="sample").transform(frame)
    for i, moments in answers.items():
        assert sample[i, 0] == pytest.approx(mean[0] + sd[0] * moments.x_mean,
                                             abs=0.08 * sd[0]), i


def test_imputer_multiple_imputations_are_on_the_original_scale(frame, injected):
    """sample: each row's draws have the posterior's mean and spread, in original units."""
    x, mean, sd = standardised(frame)
    observed = ~np.isnan(x)
    completed = injected.set_params(num_samples=3000).sample(frame, m=300)
    draws = np.stack([c.to_numpy() for c in completed])
    assert all(isinstance(c, pd.DataFrame) for c in completed)
    np.testing.assert_array_equal(draws[:, observed],
                                  np.broadcast_to(frame.to_numpy()[observed],
                                                  (300, observed.sum())))
    for i, moments in mnar_answers(np.nan_to_num(x), observed).items():
        column = draws[:, i, 0]
        assert column.mean() == pytest.approx(mean[0] + sd[0] * moments.x_mean,
                                              abs=4 * sd[0] * moments.x_sd / np.sqrt(300)), i
        assert column.std() == pytest.approx(sd[0] * moments.x_sd, rel=0.2), i


def test_imputer_checks_report_the_replicated_missing_rate_the_model_implies(
        frame, injected, tmp_path, monkeypatch):
    """summary.csv: data columns exactly; the replicated missing rate of each feature is
    the average over rows of P(s_j = 0) under the row's posterior, by quadrature (the
    plots are drawn in tests/test_imputer.py; skipped here for time)."""
    def no_plot(*args, **kwargs):  # an empty file where the figure would go
        path = next(a for a in args if isinstance(a, Path))
        path.write_bytes(b"")

    for name in ("plot_histograms", "plot_missingness_curves"):
        monkeypatch.setattr(f"notmiwae.inference.imputer.{name}", no_plot)
    x, _, _ = standardised(frame)
    observed = ~np.isnan(x)
    summary = injected.check(frame, tmp_path, num_replicates=200)
    values = frame.to_numpy()
    np.testing.assert_allclose(summary["missing_rate"], 1 - observed.mean(0))
    np.testing.assert_allclose(summary["observed_mean"], np.nanmean(values, 0))
    np.testing.assert_allclose(summary["observed_sd"], np.nanstd(values, 0))
    answers = mnar_answers(np.nan_to_num(x), observed)
    grid = next(iter(answers.values())).z_grid
    expected = np.zeros(2)
    for i in range(len(x)):
        if i in answers:
            density = answers[i].z_density
        else:  # complete row: p(z | x) is Gaussian (s only involves observed values)
            mean, var = latent_posterior(MNAR, x[i], observed[i])
            density = np.exp(-0.5 * (grid - mean) ** 2 / var)
            density /= density.sum()
        expected += [replicated_missing_rate(MNAR, grid, density, j) for j in range(2)]
    expected /= len(x)
    np.testing.assert_allclose(summary["missing_rate_rep"], expected, rtol=0, atol=0.035)
    assert (summary["missing_rate_rep_q05"] <= summary["missing_rate_rep"]).all()
    assert (summary["missing_rate_rep"] <= summary["missing_rate_rep_q95"]).all()
