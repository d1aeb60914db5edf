"""Rubin's rules, the missingness mechanisms and the error metrics, each by hand."""

import math
import warnings

import numpy as np
import pytest

from notmiwae.experiments.mechanisms import mcar, paper_mnar, standardise
from notmiwae.experiments.metrics import rmse_missing, signed_error_missing
from notmiwae.inference.pooling import Pooled, rubin_pool


def test_rubin_pool_by_hand():
    q = [1.0, 1.4, 0.8, 1.2]
    u = [0.10, 0.20, 0.15, 0.05]
    m = 4
    q_bar = sum(q) / m  # 1.1
    u_bar = sum(u) / m  # 0.125
    b = sum((x - q_bar) ** 2 for x in q) / (m - 1)  # 0.2 / 3
    t = u_bar + (1 + 1 / m) * b
    df = (m - 1) * (1 + u_bar / ((1 + 1 / m) * b)) ** 2
    pooled = rubin_pool(q, u)
    assert pooled == Pooled(estimate=pytest.approx(q_bar), variance=pytest.approx(t),
                            within=pytest.approx(u_bar), between=pytest.approx(b),
                            df=pytest.approx(df))
    assert pooled.df == pytest.approx(3 * (1 + 0.125 / (1.25 * 0.2 / 3)) ** 2)
    assert pooled.df == pytest.approx(18.75)  # 3 (1 + 1.5)^2
    assert all(isinstance(v, float) for v in (pooled.estimate, pooled.variance, pooled.df))


def test_rubin_degrees_of_freedom_with_two_imputations_and_no_spread():
    pooled = rubin_pool([2.0, 3.0], [1.0, 3.0])
    b = 0.5  # var([2, 3], ddof=1)
    assert pooled.between == pytest.approx(b)
    assert pooled.variance == pytest.approx(2.0 + 1.5 * b)
    assert pooled.df == pytest.approx(1 * (1 + 2.0 / (1.5 * b)) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no spread: df is infinite, with no 0 / 0 on the way
        same = rubin_pool([1.5, 1.5, 1.5], [0.2, 0.4, 0.3])
    assert same.between == 0 and same.df == math.inf
    unit = rubin_pool([0.0, 1.0, 2.0], [0.5, 0.5, 0.5])  # B = 1 exactly: df is finite
    assert unit.between == 1.0
    assert unit.df == pytest.approx(2 * (1 + 0.5 / (4 / 3)) ** 2)
    assert same.variance == pytest.approx(0.3) and same.estimate == 1.5


@pytest.mark.parametrize("estimates, variances", [([1.0], [0.1]), ([1.0, 2.0], [0.1]),
                                                  ([[1.0, 2.0]], [[0.1, 0.2]]), ([], [])])
def test_rubin_pool_refuses_fewer_than_two_or_mismatched(estimates, variances):
    with pytest.raises(ValueError, match="^need m >= 2 estimates and as many variances$"):
        rubin_pool(estimates, variances)


def test_paper_mnar_cut_off_is_mean_plus_offset_sd_inclusive():
    """First floor(D/2) columns: observed iff x <= mean + offset * sd (population sd);
    the rest always observed."""
    col = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # mean 2, population sd sqrt(2)
    x = np.stack([col, -col, col * 10, col, col], 1)  # D = 5: columns 0 and 1 masked
    mask = paper_mnar(x)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask[:, 0], col <= 2.0)  # 2.0 itself stays observed
    np.testing.assert_array_equal(mask[:, 1], -col <= -2.0)
    assert mask[:, 2:].all()
    sd = math.sqrt(2.0)
    np.testing.assert_array_equal(paper_mnar(x, offset=1 / sd)[:, 0], col <= 3.0)
    np.testing.assert_array_equal(paper_mnar(x, offset=-0.5)[:, 0], col <= 2 - 0.5 * sd)
    assert paper_mnar(x[:, :1]).all()  # D = 1: floor(1 / 2) = 0 columns masked
    # Exactly at the cut-off: a value equal to mean + offset * sd is kept.
    y = np.array([[0.0], [2.0], [4.0]])  # mean 2, sd sqrt(8 / 3)
    two = np.concatenate([y, y], 1)
    offset = 2.0 / math.sqrt(8 / 3)
    assert paper_mnar(two, offset)[:, 0].tolist() == [True, True, True]
    assert paper_mnar(two, offset - 1e-9)[:, 0].tolist() == [True, True, False]


def test_standardise_uses_the_population_sd_and_names_constant_columns():
    x = np.array([[1.0, 5.0, 3.0], [3.0, 5.0, 4.0], [5.0, 5.0, 8.0]])
    z = standardise(x[:, [0, 2]])
    np.testing.assert_allclose(z[:, 0], (x[:, 0] - 3) / math.sqrt(8 / 3))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1)
    with pytest.raises(ValueError, match=r"constant column\(s\) \[1\]: cannot standardise"):
        standardise(x)


def test_mcar_rate_bounds_and_seed():
    assert mcar((50, 4), 0.0).all()
    np.testing.assert_array_equal(mcar((6, 3), 0.4), np.random.default_rng(0).random((6, 3))
                                  >= 0.4)  # seed 0 by default
    assert mcar((50, 4), 0.3, seed=2).dtype == bool
    np.testing.assert_array_equal(mcar((50, 4), 0.3, seed=2), mcar((50, 4), 0.3, seed=2))
    assert not np.array_equal(mcar((50, 4), 0.3, seed=2), mcar((50, 4), 0.3, seed=3))
    expected = np.random.default_rng(5).random((6, 3)) >= 0.4
    np.testing.assert_array_equal(mcar((6, 3), 0.4, seed=5), expected)
    for rate in (1.0, -0.1):
        with pytest.raises(ValueError, match=f"rate must be in \\[0, 1\\), got {rate}"):
            mcar((3, 3), rate)


def test_rmse_over_missing_entries_only():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    imputed = np.array([[1.5, 99.0], [0.0, 4.0]])
    mask = np.array([[False, True], [False, True]])  # column 0 missing
    assert rmse_missing(x, imputed, mask) == pytest.approx(math.sqrt((0.25 + 9) / 2))
    assert rmse_missing(x, imputed, mask.astype(int)) == pytest.approx(math.sqrt(4.625))
    with pytest.raises(ValueError,
                       match="^no missing entries: RMSE over missing entries is undefined$"):
        rmse_missing(x, imputed, np.ones((2, 2), dtype=bool))


def test_signed_error_per_column():
    x = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]])
    imputed = np.array([[2.0, 2.0, -1.0], [2.5, 4.0, 1.0]])
    mask = np.array([[False, True, False], [False, True, True]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a column with nothing missing is NaN, silently
        got = signed_error_missing(x, imputed, mask)
    np.testing.assert_allclose(got[[0, 2]], [(1.0 - 0.5) / 2, -1.0])
    assert np.isnan(got[1])
    np.testing.assert_array_equal(signed_error_missing(x, imputed, mask.astype(int)), got)
