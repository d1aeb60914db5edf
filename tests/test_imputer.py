"""The scikit-learn imputer: API, Pipeline, clone, pickle, save/load, validation."""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pyro
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from notmiwae.inference import NotMIWAEImputer
from notmiwae.inference.checks import (
    learned_observed_probability,
    observed_fraction,
    replicate,
)
from notmiwae.inference.imputation import LowEffectiveSampleSize, impute
from notmiwae.inference.pooling import rubin_pool
from tests.conftest import toy_program

FAST = dict(iterations=60, num_samples=30, hidden=16)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 2))
    data = pd.DataFrame(z @ rng.normal(size=(2, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 2],
                        columns=["a", "b", "c", "d"], index=[f"row{i}" for i in range(120)])
    holey = data.copy()
    holey.loc[data["a"] > data["a"].mean(), "a"] = np.nan
    holey.iloc[::7, 1] = np.nan
    return data, holey


@pytest.fixture(scope="module")
def fitted(frame):
    return NotMIWAEImputer(**FAST).fit(frame[1])


def test_transform_fills_missing_keeps_observed_and_original_scale(frame, fitted):
    data, holey = frame
    out = fitted.transform(holey)
    observed = holey.notna().to_numpy()
    assert isinstance(out, np.ndarray) and not np.isnan(out).any()
    assert np.array_equal(out[observed], holey.to_numpy()[observed])  # bit for bit
    # Imputations are on the column's own scale: b's lie near its observed values (on the
    # standardised scale they would be near 0, more than one sd below them). The exact
    # values are checked in tests/test_known_answers.py.
    b = holey["b"]
    assert abs(np.mean(out[~observed[:, 1], 1]) - b.mean()) < 0.5 * b.std()


def test_set_output_pandas_keeps_names_and_index(frame, fitted):
    out = clone(fitted).set_params(**FAST).fit(frame[1]).set_output(transform="pandas") \
        .transform(frame[1])
    assert list(out.columns) == ["a", "b", "c", "d"]
    assert list(out.index) == list(frame[1].index)
    assert list(fitted.get_feature_names_out()) == ["a", "b", "c", "d"]


def test_new_rows_need_no_retraining(frame, fitted):
    new = frame[1].iloc[:10]
    assert fitted.transform(new).shape == (10, 4)


def test_pipeline_and_clone(frame):
    data, holey = frame
    pipe = Pipeline([("impute", NotMIWAEImputer(**FAST)), ("regress", LinearRegression())])
    pipe.fit(holey[["a", "b", "c"]], data["d"])
    assert np.isfinite(pipe.predict(holey[["a", "b", "c"]])).all()
    copy = clone(pipe.named_steps["impute"])
    assert copy.get_params() == NotMIWAEImputer(**FAST).get_params()
    assert not hasattr(copy, "program_")


def test_pickle_and_save_load_give_identical_imputations(frame, fitted, tmp_path):
    holey = frame[1]
    expected = fitted.transform(holey)
    assert np.array_equal(pickle.loads(pickle.dumps(fitted)).transform(holey), expected)
    fitted.save(tmp_path / "imputer.pt")
    loaded = NotMIWAEImputer.load(tmp_path / "imputer.pt")
    assert np.array_equal(loaded.transform(holey), expected)
    assert list(loaded.feature_names_in_) == ["a", "b", "c", "d"]


def test_multiple_imputation_and_rubins_rules(frame, fitted):
    holey = frame[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowEffectiveSampleSize)  # L = 30: tested elsewhere
        completed = fitted.sample(holey, m=4)
    assert len(completed) == 4 and all(isinstance(c, pd.DataFrame) for c in completed)
    assert not completed[0].equals(completed[1])
    means = [c["a"].mean() for c in completed]
    variances = [c["a"].var() / len(c) for c in completed]
    pooled = rubin_pool(means, variances)
    assert pooled.estimate == pytest.approx(np.mean(means))
    between = np.var(means, ddof=1)
    assert pooled.variance == pytest.approx(np.mean(variances) + (1 + 1 / 4) * between)


@pytest.mark.parametrize("bad, message", [
    (lambda h: h.astype(object).assign(b=["x"] + list(h["b"][1:])), "column 'b' holds a "
                                                                     "non-numeric value 'x'"),
    (lambda h: h.assign(c=np.inf), "column 'c' holds an infinite value inf \\(row 'row0'\\)"),
    (lambda h: h.assign(d=np.nan), r"column\(s\) \['d'\] have no observed value"),
    (lambda h: np.where(np.arange(4) % 2 == 1, np.nan, h.to_numpy()),
     r"^column\(s\) \[1, 3\] have no observed value$"),  # an array: columns by position
    (lambda h: np.where(np.arange(4) == 2, np.inf, h.to_numpy()),
     "column 2 holds an infinite value inf \\(row 0\\)"),
])
def test_bad_input_is_named(frame, bad, message):
    with pytest.raises(ValueError, match=message):
        NotMIWAEImputer(**FAST).fit(bad(frame[1]))


@pytest.mark.parametrize("params, message", [
    ({"iterations": 2e4}, "'iterations' parameter of NotMIWAEImputer must be an int"),
    ({"latent_mask": "false"}, "'latent_mask' parameter .* must be an instance of 'bool'"),
    ({"estimator": "median"}, "'estimator' parameter .* must be a str among"),
    ({"num_samples": 0}, "'num_samples' parameter .* range \\[1, inf\\)"),
    ({"random_state": -1}, "'random_state' parameter"),
    ({"device": "gpu0"}, "unknown device 'gpu0'"),
])
def test_bad_parameters_are_named_before_training(frame, params, message, monkeypatch):
    monkeypatch.setattr("notmiwae.inference.imputer.fit", None)  # training would crash: not reached
    with pytest.raises(ValueError, match=message):
        NotMIWAEImputer(**{**FAST, **params}).fit(frame[1])


@parametrize_with_checks([NotMIWAEImputer(iterations=20, num_samples=20, hidden=16)])
def test_scikit_learn_estimator_checks(estimator, check):
    """scikit-learn's own API checks: cloning, pickling, fit/transform shapes, feature
    names, and the errors it expects for sparse, complex, 1-d and empty input."""
    check(estimator)


@pytest.mark.parametrize("bad, kind, message", [
    (np.array([[1 + 2j, 0.5]]), ValueError,
     "^Complex data not supported: X holds complex numbers$"),
    (pd.DataFrame({"a": [1 + 2j, 0.5]}), ValueError, "column 'a' holds complex numbers"),
    (np.arange(3.0), ValueError, re.escape(
        "X must be 2-dimensional (rows x features), got shape (3,); Reshape your data: "
        "X.reshape(-1, 1) if it is one feature, X.reshape(1, -1) if it is one row") + "$"),
    (np.zeros((3, 0)), ValueError, re.escape(
        "X has 0 feature(s) (shape=(3, 0)) while a minimum of 1 is required: at least one "
        "row and one column") + "$"),
    (np.zeros((0, 3)), ValueError, re.escape("X has 0 row(s) (shape=(0, 3))")),
    (np.array([["a", "b"]], dtype=object), ValueError,
     "^X must be numeric with NaN for missing values: could not convert"),
    (np.array([[{}, 1.0]], dtype=object), TypeError,
     "^X must be numeric with NaN for missing values: float\\(\\) argument must be"),
])
def test_input_sklearn_refuses_is_refused(bad, kind, message):
    with pytest.raises(kind, match=message):
        NotMIWAEImputer(**FAST).fit(bad)


def test_sparse_input_is_refused():
    with pytest.raises(TypeError, match=r"^X is sparse; sparse input is not supported: pass "
                                        r"a dense array \(X.toarray\(\)\) with NaN for "
                                        "missing values$"):
        NotMIWAEImputer(**FAST).fit(scipy.sparse.csr_matrix(np.eye(3)))


def test_no_rows_is_named(frame, fitted):
    with pytest.raises(ValueError, match="at least one row"):
        fitted.transform(frame[1].iloc[:0])


def test_random_state_none_draws_fresh_seeds(frame, tmp_path):
    a = NotMIWAEImputer(**{**FAST, "iterations": 3, "random_state": None}).fit(frame[1])
    b = NotMIWAEImputer(**{**FAST, "iterations": 3, "random_state": None}).fit(frame[1])
    assert a.seed_ != b.seed_ and a.get_params()["random_state"] is None
    first, second = a.sample(frame[1], m=1), a.sample(frame[1], m=1)
    assert not first[0].equals(second[0])  # each call draws anew, as None promises
    a.save(tmp_path / "a.pt")
    assert NotMIWAEImputer.load(tmp_path / "a.pt").seed_ == a.seed_


def test_wrong_columns_at_transform(frame, fitted):
    with pytest.raises(ValueError, match="feature names"):
        fitted.transform(frame[1][["a", "b", "c"]])
    with pytest.raises(ValueError, match="unknown missing 'nope'"):
        NotMIWAEImputer(missing="nope", **FAST).fit(frame[1])


@pytest.mark.parametrize("output", ["default", "pandas"])
def test_posterior_predictive_checks_write_their_outputs(frame, fitted, tmp_path, output):
    data, holey = frame
    summary = _with_output(fitted, output).check(holey, tmp_path, X_true=data,
                                                  num_replicates=5)
    assert list(summary["feature"]) == ["a", "b", "c", "d"]
    assert summary.loc[0, "missing_rate"] == pytest.approx(holey["a"].isna().mean())
    assert summary.loc[3, "missing_rate"] == 0.0
    # The replicated columns are the replicated data on the original scale (the known
    # values they take are checked in tests/test_known_answers.py).
    x, mask = fitted._tensors(holey.to_numpy())
    x_rep, s_rep = replicate(fitted.program_, x, mask, 5, seed=fitted.random_state)
    x_rep = x_rep.double().numpy() * fitted.scale_ + fitted.mean_
    s_rep = s_rep.numpy()
    np.testing.assert_allclose(summary["missing_rate_rep"], (1 - s_rep.mean(1)).mean(0))
    np.testing.assert_allclose(summary["observed_mean_rep"],
                               np.nanmean(np.where(s_rep, x_rep, np.nan), axis=(0, 1)))
    for name in ("summary.csv", "summary.md", "correlations.csv", "histograms.png",
                 "missingness.png", "imputed_vs_true.png"):
        assert (tmp_path / name).stat().st_size > 0


def _with_output(fitted, output):
    """The fitted imputer with transform's output set (a copy: the fixture is shared)."""
    return pickle.loads(pickle.dumps(fitted)).set_output(transform=output)


def test_check_refuses_a_truth_that_does_not_match(frame, fitted, tmp_path):
    data, holey = frame
    with pytest.raises(ValueError, match="X_true differs from X where X is observed: row 0"):
        fitted.check(holey, tmp_path / "swapped", X_true=data[["b", "a", "c", "d"]])
    with pytest.raises(ValueError, match=r"^X_true must be complete and shaped like X "
                                         r"\(120, 4\), got shape \(120, 4\) with missing "
                                         "values$"):
        fitted.check(holey, tmp_path / "holey", X_true=holey)
    with pytest.raises(ValueError, match=r"^X_true must be complete and shaped like X "
                                         r"\(120, 4\), got shape \(120, 3\)$"):
        fitted.check(holey, tmp_path / "narrow", X_true=data.iloc[:, :3])
    nudged = data.copy()
    nudged.iloc[0, 2] *= 1 + 5e-6  # observed values must agree to 1e-6 relative
    with pytest.raises(ValueError, match="differs from X where X is observed: row 0, column "
                                         "'c'"):
        fitted.check(holey, tmp_path / "nudged", X_true=nudged)
    assert not (tmp_path / "swapped").exists()  # checked before anything is written


def test_observed_fraction_recovers_a_known_mechanism():
    """The binned truth drawn beside the learned curve: P(s = 1 | x) = sigmoid(-3 x)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=200_000)
    x[:2] = -2.0, 2.0  # bin edges at -2, -1.5, ..., 2
    observed = rng.uniform(size=x.size) < 1 / (1 + np.exp(3 * x))
    centres, fraction = observed_fraction(x, observed, bins=8)
    np.testing.assert_allclose(fraction, 1 / (1 + np.exp(3 * centres)), atol=0.03)
    # A cut-off mechanism (the paper's) gives 1 below it and 0 above it.
    centres, fraction = observed_fraction(x, x <= 0, bins=8)
    np.testing.assert_array_equal(fraction, (centres < 0).astype(float))


def test_observed_fraction_by_hand():
    """Four bins over [0, 3] (edges 0, 0.75, 1.5, 2.25, 3): the maximum falls in the last
    bin, and a bin of fewer than 5 rows is left out."""
    values = np.repeat([0.0, 1.0, 2.0, 3.0], [5, 6, 4, 5])
    observed = np.array([1, 1, 0, 0, 0] + [1] * 6 + [1] * 4 + [0] * 5, dtype=bool)
    centres, fraction = observed_fraction(values, observed, bins=4)
    np.testing.assert_allclose(centres, [0.375, 1.125, 2.625])
    np.testing.assert_allclose(fraction, [0.4, 1.0, 0.0])
    centres, _ = observed_fraction(np.linspace(0, 1, 200), np.ones(200, bool))
    assert len(centres) == 20  # 20 bins by default, 10 rows each


def test_learned_mechanism_of_a_masked_model_averages_over_z_mask():
    """P(s = 1 | x) = mean over z_mask draws of sigmoid(-W (x - b) + g mu_m(z_mask))."""
    program = toy_program("selfmasking", latent_mask=True)
    x = torch.randn(7, 5, dtype=torch.float64)
    z_mask = torch.randn(30, 4, dtype=torch.float64)
    miss = program.missingness
    w, b, g = miss.weight, miss.bias, miss.gain
    expected = torch.stack([torch.sigmoid(-w * (x - b) + g * program.latent_mask(z))
                            for z in z_mask]).mean(0)
    with torch.no_grad():
        got = learned_observed_probability(program, x, z_mask)
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=1e-12)
    assert learned_observed_probability(program, x).shape == (7, 5)  # draws from the prior


def test_random_state_leaves_the_global_generators_alone(frame, fitted):
    """Seeding by random_state must not reset the caller's own random streams."""
    import random

    def draws():
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()

    pyro.set_rng_seed(123)
    expected = draws()
    pyro.set_rng_seed(123)
    fitted.transform(frame[1].iloc[:5])
    fitted.sample(frame[1].iloc[:5], m=2)
    clone(fitted).set_params(iterations=5).fit(frame[1])
    assert draws() == expected
    # ... while the imputation itself stays reproducible.
    assert np.array_equal(fitted.transform(frame[1]), fitted.transform(frame[1]))


def test_an_imputer_of_replicas_is_an_ensemble_of_the_single_runs(tmp_path):
    """Replica r is the run with seed random_state + r; with one replica the ensemble is
    the single run; the pooled and equal ensembles are what impute() computes from the
    same programs; save/load keeps every replica."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)) @ np.array([[1.0, 0.5, 0.2], [0, 1, 0.4], [0, 0, 1]])
    X[rng.random(X.shape) < 0.2] = np.nan
    params = dict(iterations=30, num_samples=40, verbose=False, hidden=8)
    ensemble = NotMIWAEImputer(replicas=2, **params).fit(X)
    assert len(ensemble.programs_) == 2 and ensemble.program_ is ensemble.programs_[0]
    assert ensemble.history_.shape == (30, 2)
    for r in range(2):
        single = NotMIWAEImputer(random_state=r, **params).fit(X)
        for a, b in zip(single.program_.parameters(), ensemble.programs_[r].parameters(),
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    one = NotMIWAEImputer(replicas=1, **params).fit(X)
    assert np.array_equal(one.transform(X), NotMIWAEImputer(**params).fit(X).transform(X))
    x, mask = ensemble._tensors(X)
    for weighting in ("pooled", "equal"):
        ensemble.set_params(ensemble=weighting)
        expected = impute(ensemble.programs_, x, mask, 40, seed=0, ensemble=weighting)
        got = ensemble.transform(X)
        np.testing.assert_allclose(got, ensemble._original_scale(X, expected), rtol=0,
                                   atol=0)
    pooled = ensemble.set_params(ensemble="pooled").transform(X)
    assert not np.allclose(pooled, ensemble.set_params(ensemble="equal").transform(X))
    ensemble.save(tmp_path / "ensemble.pt")
    loaded = NotMIWAEImputer.load(tmp_path / "ensemble.pt")
    assert len(loaded.programs_) == 2 and loaded.get_params()["replicas"] == 2
    assert np.array_equal(loaded.transform(X), ensemble.transform(X))
    with pytest.warns(LowEffectiveSampleSize):
        draws = loaded.sample(X, m=30)
    assert len(draws) == 30


@pytest.mark.parametrize("column, values, advice", [
    (" ID ", ["a", "a", "b", None], "it looks like a row identifier"),  # by its name
    ("colour", ["r", "g", "b", "y"], "it looks like a row identifier"),  # unique, complete
    ("colour", ["r", "r", "g", "b"], "only numbers can be imputed: encode the column as "
                                     "numbers or drop it"),
    ("colour", ["r", "g", "b", None], "only numbers can be imputed"),  # unique, not complete
])
def test_a_non_numeric_column_gets_advice_by_what_it_looks_like(column, values, advice):
    data = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], column: values})
    with pytest.raises(ValueError, match=f"column {column!r} holds a non-numeric value "
                                         f"{values[0]!r} \\(row 0\\); {advice}"):
        NotMIWAEImputer(**FAST).fit(data)


def test_a_mismatched_truth_names_the_column_by_position_for_an_array(frame, tmp_path):
    data, holey = frame
    fitted = NotMIWAEImputer(**{**FAST, "iterations": 2}).fit(holey.to_numpy())
    with pytest.raises(ValueError, match="row 0, column 0 "):
        fitted.check(holey.to_numpy(), tmp_path / "unused",
                     X_true=data[["b", "a", "c", "d"]].to_numpy())


class NotAWeight:  # an object torch.load(weights_only=True) refuses to unpickle
    pass


def test_saved_imputers_that_cannot_be_read_are_refused_by_name(frame, fitted, tmp_path):
    from notmiwae.inference.training import TrainConfig, fit

    path = tmp_path / "imp.pt"
    at = re.escape(str(path))
    with pytest.raises(FileNotFoundError, match=f"^no saved imputer at {at}$"):
        NotMIWAEImputer.load(path)
    path.write_text("a,b\n1,2\n")
    try:  # torch's own words, first line, in the message
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever torch raises for a text file
        first = str(err).strip().splitlines()[0]
    with pytest.raises(ValueError, match=f"^{at} is not a readable saved imputer "
                                         f"\\({re.escape(first)}\\)$"):
        NotMIWAEImputer.load(path)
    fitted.save(path)
    blob = torch.load(path, weights_only=True)
    from notmiwae import __version__
    assert blob["imputer_format"] == 1 and blob["version"] == __version__
    pandas = pickle.loads(pickle.dumps(fitted)).set_output(transform="pandas")
    pandas.save(tmp_path / "pandas.pt")  # the output setting is kept
    assert isinstance(NotMIWAEImputer.load(tmp_path / "pandas.pt").transform(frame[1]),
                      pd.DataFrame)
    for other, message in (([1, 2], "is not a notmiwae-pyro checkpoint"),
                           ({"a": 1}, "is not a notmiwae-pyro checkpoint"),
                           ({**blob, "extra": NotAWeight()}, "is not a readable saved imputer"),
                           ({**blob, "imputer_format": 9, "version": "9.9"},
                            "was saved by notmiwae 9.9 \\(format 9\\); this is notmiwae")):
        torch.save(other, path)
        with pytest.raises(ValueError, match=f"^{at} {message}"):
            NotMIWAEImputer.load(path)
    x, mask = torch.randn(20, 4), torch.rand(20, 4) > 0.3
    fit(fitted.model_config_, x * mask, mask, TrainConfig(iterations=1)).save(path)
    with pytest.raises(ValueError, match=f"^{at} is a model checkpoint, not a saved "
                                         "NotMIWAEImputer$"):
        NotMIWAEImputer.load(path)
    for change, message in (
            (lambda b: b["model_config"].update(n_features=5),
             ": the saved weights do not fit the model its configuration builds "
             "\\(Error\\(s\\) in loading state_dict for NotMIWAE:\\)$"),
            (lambda b: b.update(mean=b["mean"][:2]),
             ": scaling of 2 features for a model of 4; the file is damaged$")):
        damaged = {**blob, "model_config": dict(blob["model_config"])}
        change(damaged)
        torch.save(damaged, path)
        with pytest.raises(ValueError, match=f"^{at}{message}"):
            NotMIWAEImputer.load(path)
    # Files of the first format may lack the format, the seed and the replicas' states.
    torch.save({k: v for k, v in blob.items() if k not in ("version", "imputer_format")}
               | {"imputer_format": 2}, path)
    with pytest.raises(ValueError, match="saved by notmiwae unknown \\(format 2\\)"):
        NotMIWAEImputer.load(path)
    torch.save({k: v for k, v in blob.items()
                if k not in ("imputer_format", "seed", "replica_states")}, path)
    loaded = NotMIWAEImputer.load(path)
    np.testing.assert_array_equal(loaded.transform(frame[1]), fitted.transform(frame[1]))
    assert len(loaded.programs_) == 1
    np.testing.assert_array_equal(loaded.history_, fitted.history_)
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == list(fitted.feature_names_in_)
    fitted.save(path)
    assert NotMIWAEImputer.load(path).seed_ == fitted.seed_
    plain = NotMIWAEImputer(**{**FAST, "iterations": 2, "random_state": 3})
    plain.fit(frame[1].to_numpy()).save(path)  # fitted on an array: no feature names
    assert not hasattr(NotMIWAEImputer.load(path), "feature_names_in_")
    torch.save({k: v for k, v in torch.load(path, weights_only=True).items() if k != "seed"},
               path)
    assert NotMIWAEImputer.load(path).seed_ == 3  # no seed saved: random_state's
    with pytest.raises(NotFittedError, match="not fitted yet"):
        NotMIWAEImputer().save(tmp_path / "unfitted.pt")


def test_an_error_is_summed_up_by_its_first_line_or_its_type():
    from notmiwae.inference.imputer import _first_line

    assert _first_line(ValueError("  bad magic number\nmore detail\n")) == "bad magic number"
    assert _first_line(KeyError()) == "KeyError" and _first_line(OSError(" ")) == "OSError"


def test_frames_that_cannot_be_trained_on_are_refused_at_the_edges(monkeypatch):
    """Duplicate names; 10 rows with an observed value are enough (9 are not), and fewer
    than 100 warn (100 do not): the messages in full."""
    from notmiwae.inference import imputer as imputer_module

    rng = np.random.default_rng(0)

    def rows(n):
        data = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
        data.iloc[n:] = np.nan  # rows with nothing observed do not count
        return data

    def not_reached(*args, **kwargs):
        raise AssertionError("refused frames must not reach training")

    monkeypatch.setattr(imputer_module, "fit", not_reached)
    with pytest.raises(ValueError, match=r"^duplicate column name\(s\) \['a'\]; every "
                                         "column needs its own name$"):
        NotMIWAEImputer().fit(rows(50).set_axis(["a", "a"], axis=1))
    with pytest.raises(ValueError, match=r"^9 row\(s\) with an observed value "
                                         r"\(n_samples=9\); at least 10 are needed to "
                                         "learn from$"):
        NotMIWAEImputer().fit(rows(9))
    calls = []
    monkeypatch.setattr(imputer_module, "fit", lambda *a, **k: calls.append(1) or 1 / 0)
    for n, warned in ((10, True), (99, True), (100, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ZeroDivisionError):  # training (stubbed) is reached
                NotMIWAEImputer().fit(rows(n))
        messages = [str(w.message) for w in caught if w.category is UserWarning]
        expected = (f"only {n} rows with an observed value: with fewer than 100 the model "
                    "learns little, and imputations lean on its prior")
        assert messages == ([expected] if warned else []), n
    assert len(calls) == 3


def test_progress_is_shown_from_1000_iterations_when_verbose_is_auto():
    assert not NotMIWAEImputer(iterations=999)._progress()
    assert NotMIWAEImputer(iterations=1000)._progress()
    assert not NotMIWAEImputer(iterations=5000, verbose=False)._progress()
    assert NotMIWAEImputer(iterations=5, verbose=True)._progress()


def test_the_imputers_defaults():
    """The defaults the README documents: the paper's networks and training, L = 1,000."""
    imputer = NotMIWAEImputer()
    expected = {"hidden": 128, "iterations": 20_000, "batch_size": 16, "num_particles": 20,
                "learning_rate": 1e-3, "init": "torch", "num_samples": 1_000,
                "missing": "selfmasking_known", "decoder": "gaussian", "latent_dim": None,
                "replicas": 1, "ensemble": "pooled", "random_state": 0, "estimator": "mean",
                "prior": "normal", "latent_mask": False, "verbose": "auto", "compile": "auto"}
    assert {k: getattr(imputer, k) for k in expected} == expected


def test_values_up_to_1e150_are_accepted_and_beyond_refused(frame):
    data = frame[1].copy()
    data.iloc[0, 1] = 1e150  # the largest value standardising cannot overflow
    NotMIWAEImputer(**{**FAST, "iterations": 2}).fit(data)
    data.iloc[0, 1] = 2e150
    with pytest.raises(ValueError, match="column 'b' holds a value too large to standardise"):
        NotMIWAEImputer(**{**FAST, "iterations": 2}).fit(data)


def test_frames_become_float_arrays_and_infinities_are_named_in_full():
    from notmiwae.inference.imputer import as_float_array

    ints = as_float_array(pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}))
    assert ints.dtype == np.float64 and ints.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert as_float_array(np.array([[1, 2], [3, 4]])).dtype == np.float64
    data = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [4.0, 5.0, -np.inf]})
    with pytest.raises(ValueError, match=r"^column 'b' holds an infinite value -inf "
                                         r"\(row 2\); use NaN for a missing value$"):
        NotMIWAEImputer(**FAST).fit(data)
    assert NotMIWAEImputer().__sklearn_tags__().input_tags.allow_nan is True
