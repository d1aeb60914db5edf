"""Properties over random inputs (hypothesis): observed values are never changed, through
the imputer and the command; odd input gives only the documented errors; memory is
bounded by blocks of rows and chunks of samples, whatever N and L."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from notmiwae.inference import imputation
from notmiwae.inference.cli import main
from notmiwae.inference.imputer import NotMIWAEImputer
from tests.conftest import toy_program

TINY = dict(iterations=3, hidden=4, num_particles=2, num_samples=4, batch_size=8)
FEW = settings(max_examples=12, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
pytestmark = pytest.mark.filterwarnings("ignore:only .* rows with an observed value")


PLAIN_NAMES = st.from_regex(r"[A-Za-z\u00e9_][A-Za-z0-9\u00e9_ .]{0,4}[A-Za-z0-9]",
                            fullmatch=True).filter(lambda name: name != "id")


ANY_NAMES = st.text(min_size=1, max_size=6)


@st.composite
def holey_frames(draw, names=ANY_NAMES):
    """A DataFrame of numbers with NaN holes: random shape, dtype, index and names; every
    column observed somewhere and at least 10 rows with an observed value."""
    n, d = draw(st.integers(10, 24)), draw(st.integers(1, 4))
    values = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-1e6, 1e6, width=32)))
    missing = draw(hnp.arrays(np.bool_, (n, d)))
    missing[np.arange(n), draw(hnp.arrays(np.int64, n, elements=st.integers(0, d - 1)))] = False
    missing[draw(hnp.arrays(np.int64, d, elements=st.integers(0, n - 1))), np.arange(d)] = False
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "Int64"]))
    if dtype in ("int64", "Int64"):
        values = np.round(values)
    names = draw(st.lists(names, min_size=d, max_size=d, unique=True))
    index = draw(st.sampled_from(["range", "labels", "shuffled"]))
    index = {"range": pd.RangeIndex(n), "labels": pd.Index([f"row {i}" for i in range(n)]),
             "shuffled": pd.Index(np.random.default_rng(n).permutation(n) * 3)}[index]
    frame = pd.DataFrame(values, columns=names, index=index)
    frame = frame.astype("Int64" if dtype == "Int64" else dtype)
    if dtype == "int64":
        return frame, np.zeros_like(missing)  # integer columns cannot hold a hole
    return frame.mask(missing), missing


@FEW
@given(holey_frames(), st.booleans())
def test_the_imputer_never_changes_an_observed_value(case, pandas_output):
    frame, missing = case
    imputer = NotMIWAEImputer(**TINY)
    if pandas_output:
        imputer.set_output(transform="pandas")
    out = imputer.fit(frame).transform(frame)
    given_values = frame.astype("float64").to_numpy()
    if pandas_output:
        assert out.index.equals(frame.index) and list(out.columns) == list(frame.columns)
        out = out.to_numpy()
    assert np.array_equal(out[~missing], given_values[~missing])  # bit for bit
    assert np.isfinite(out).all()
    for completed in imputer.sample(frame, m=2):
        assert np.array_equal(np.asarray(completed)[~missing], given_values[~missing])


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(holey_frames(PLAIN_NAMES), st.booleans())
def test_the_command_never_changes_an_observed_value(tmp_path_factory, case, with_ids):
    frame, _ = case
    folder = tmp_path_factory.mktemp("cli")
    data, config = folder / "data.csv", folder / "tiny.toml"
    frame.reset_index(drop=True).rename_axis("id").to_csv(data, index=with_ids)
    config.write_text("[model]\nhidden = 4\n[training]\nnum_particles = 2\nbatch_size = 8\n"
                      "[imputation]\nnum_samples = 4\n")
    ids = ["--index-col", "id"] if with_ids else []
    assert main(["fit", str(data), *ids, "--config", str(config), "--iterations", "3",
                 "--out", str(folder / "run")]) == 0
    assert main(["impute", str(data), "--run", str(folder / "run"),
                 "--out", str(folder / "out.csv")]) == 0  # the index column is remembered
    given_frame = pd.read_csv(data)
    out = pd.read_csv(folder / "out.csv")
    assert list(out.columns) == list(given_frame.columns)
    observed = given_frame.notna().to_numpy()
    assert np.array_equal(out.to_numpy()[observed], given_frame.to_numpy()[observed])
    assert out.notna().all().all()


CELL = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                 st.text(max_size=3), st.none(), st.booleans(), st.just(pd.NA),
                 st.complex_numbers(max_magnitude=5))


@st.composite
def odd_input(draw):
    """Anything a user might pass: frames of mixed cells and names, ragged arrays."""
    n, d = draw(st.integers(0, 14)), draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["frame", "array", "list", "numbers", "numbers"]))
    if kind == "numbers":  # mostly usable: ordinary numbers, holes, the odd extreme value
        number = st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), st.floats(), st.integers(),
                           st.floats(-1e6, 1e6))
        return pd.DataFrame([[draw(number) for _ in range(max(d, 1))]
                             for _ in range(draw(st.integers(10, 16)))])
    if kind == "frame":
        names = draw(st.lists(st.one_of(st.text(max_size=3), st.integers(0, 3)),
                              min_size=d, max_size=d))
        columns = [draw(st.lists(CELL, min_size=n, max_size=n)) for _ in range(d)]
        frame = pd.DataFrame(dict(enumerate(columns)), index=range(n))
        frame.columns = names if len(names) == frame.shape[1] else frame.columns
        return frame
    if kind == "array":
        return draw(hnp.arrays(draw(st.sampled_from([np.float64, np.float32, np.int8,
                                                     np.bool_, np.complex64])),
                               hnp.array_shapes(min_dims=0, max_dims=3, max_side=12)))
    return draw(st.lists(st.lists(CELL, max_size=d + 1), max_size=n))


@settings(FEW, max_examples=25)
@given(odd_input())
def test_odd_input_gives_only_documented_errors(X):
    """fit and transform either work or raise ValueError / TypeError (never IndexError,
    KeyError, a NaN result, ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imputer = NotMIWAEImputer(**TINY).fit(X)
            out = np.asarray(imputer.transform(X), dtype=float)
    except (ValueError, TypeError) as err:
        assert str(err)
        return
    assert np.isfinite(out).all()


def test_imputation_memory_is_bounded_by_blocks(monkeypatch):
    """Each run of the program sees at most row_batch rows x sample_chunk samples, so the
    memory imputation needs does not grow with N or L (README: the measured peak)."""
    program = toy_program("selfmasking", d=5, hidden=8).float()
    from notmiwae.inference import importance

    seen = []
    original = importance.log_importance_weights  # what the eager weights call

    def recording(program, x, mask, num_samples, *args, **kwargs):
        seen.append((len(x), num_samples))
        return original(program, x, mask, num_samples, *args, **kwargs)

    monkeypatch.setattr(importance, "log_importance_weights", recording)
    x, mask = torch.randn(40, 5), torch.rand(40, 5) > 0.3
    for run in (imputation.impute, imputation.effective_sample_size):
        run(program, x, mask, num_samples=1000, row_batch=32, sample_chunk=400)
    imputation.multiple_impute(program, x, mask, 2, num_samples=1000, row_batch=32,
                               sample_chunk=400)
    assert max(rows for rows, _ in seen) == 32 and max(s for _, s in seen) == 400
    assert sum(s for rows, s in seen if rows == 32) == 3 * 1000  # every sample drawn
