"""Imputation: observed entries untouched, weights equal to the hand-written formula."""

import re
import warnings

import numpy as np
import pyro
import pytest
import torch

from notmiwae.inference import checks, imputation
from notmiwae.inference.importance import log_importance_weights
from notmiwae.inference.imputation import effective_sample_size, impute, multiple_impute
from notmiwae.inference.reference import reference_log_weights
from tests.conftest import toy_data, toy_program
from tests.test_bound import noise_of


@pytest.mark.parametrize("estimator", ["mean", "sample"])
@pytest.mark.parametrize("missing, latent_mask", [("ignorable", False),
                                                  ("selfmasking_known", False),
                                                  ("linear", False), ("selfmasking", True),
                                                  ("linear", True)])
def test_snis_imputation_matches_hand_written_weights(missing, latent_mask, estimator):
    """The imputation weights include p(z_mask) / q(z_mask | x^o) for the masked model."""
    program = toy_program(missing, latent_mask=latent_mask)
    x, mask, _ = toy_data()
    L = 40
    pyro.set_rng_seed(7)
    got = impute(program, x, mask, L, estimator=estimator, sample_chunk=L)
    pyro.set_rng_seed(7)
    with torch.no_grad():
        _, trace = log_importance_weights(program, x, mask, L)
        eps_z, eps_x, eps_mask = noise_of(program, x, trace)
        log_w = reference_log_weights(program, x, mask, eps_z, eps_x, eps_mask)
        w = torch.softmax(log_w, 0)  # (L, N)
        q = program.encoder(x).base_dist
        p_x = program.decoder(q.loc + q.scale * eps_z)
        value = p_x.loc if estimator == "mean" else p_x.loc + p_x.scale * eps_x
        expected = torch.where(mask, x, (w.unsqueeze(-1) * value).sum(0))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("missing, latent_mask", [("selfmasking_known", False),
                                                  ("linear", True)])
def test_effective_sample_size_matches_hand_written_weights(missing, latent_mask):
    """ESS = (sum_l w_l)^2 / sum_l w_l^2 of the hand-written weights on the same samples."""
    program = toy_program(missing, latent_mask=latent_mask)
    x, mask, _ = toy_data()
    L = 40
    got = effective_sample_size(program, x, mask, L, sample_chunk=L, seed=7)
    pyro.set_rng_seed(7)
    with torch.no_grad():
        _, trace = log_importance_weights(program, x, mask, L)
        w = torch.exp(reference_log_weights(program, x, mask, *noise_of(program, x, trace)))
    torch.testing.assert_close(got, w.sum(0) ** 2 / (w ** 2).sum(0), rtol=1e-9, atol=0)
    assert ((got >= 1 - 1e-9) & (got <= L + 1e-9)).all()


def test_effective_sample_size_streams_chunks(monkeypatch):
    g = torch.Generator().manual_seed(0)
    chunks = [(torch.randn(s, 3, generator=g, dtype=torch.float64) * 4, None)
              for s in (5, 1, 7)]
    monkeypatch.setattr(imputation, "_weighted_chunks", lambda *a: iter(chunks))
    got = imputation._ess(None, torch.zeros(3, 2, dtype=torch.float64), None, 13, 5)
    w = torch.exp(torch.cat([c[0] for c in chunks]))
    torch.testing.assert_close(got, w.sum(0) ** 2 / (w ** 2).sum(0))


def test_streamed_chunks_equal_one_pass(monkeypatch):
    """The running log-sum-exp over chunks is the same SNIS estimate as one big softmax."""
    g = torch.Generator().manual_seed(0)
    chunks = [(torch.randn(s, 3, generator=g, dtype=torch.float64) * 4,
               torch.randn(s, 3, 2, generator=g, dtype=torch.float64)) for s in (5, 1, 7)]
    monkeypatch.setattr(imputation, "_weighted_chunks", lambda *a: iter(chunks))
    x = torch.zeros(3, 2, dtype=torch.float64)
    got = imputation._snis(None, x, None, 13, 5, None)
    log_w = torch.cat([c[0] for c in chunks])
    mean = torch.cat([c[1] for c in chunks])
    torch.testing.assert_close(got, (torch.softmax(log_w, 0).unsqueeze(-1) * mean).sum(0))


def test_resampling_draws_in_proportion_to_weights(monkeypatch):
    """SIR over chunks picks sample l with probability w~_l."""
    log_w = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)).unsqueeze(-1)
    values = torch.arange(4.0, dtype=torch.float64).reshape(4, 1, 1)
    chunks = [(log_w[:1], values[:1]), (log_w[1:3], values[1:3]), (log_w[3:], values[3:])]
    monkeypatch.setattr(imputation, "_weighted_chunks", lambda *a: iter(chunks))
    torch.manual_seed(0)
    draws, ess = imputation._sir(None, torch.zeros(1, 1, dtype=torch.float64), None, 20000,
                                 4, 2)
    freq = torch.bincount(draws.flatten().long(), minlength=4) / 20000
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015, rtol=0)
    # Kish's ESS of the same weights, from the same pass: 1 / sum w~^2 = 1 / 0.3
    torch.testing.assert_close(ess, torch.tensor([1 / 0.3], dtype=torch.float64))


@pytest.mark.parametrize("estimator", ["mean", "sample"])
def test_observed_entries_never_change_and_every_missing_one_is_filled(estimator):
    program = toy_program("selfmasking_known")
    x, mask, _ = toy_data(n=30)
    out = impute(program, x, mask, 50, estimator=estimator, row_batch=7, sample_chunk=13)
    assert torch.equal(out[mask], x[mask])
    assert torch.isfinite(out).all()
    assert (out[~mask] != 0).all()
    many = multiple_impute(program, x, mask, m=4, num_samples=50, row_batch=7, sample_chunk=13)
    assert many.shape == (4, 30, 5)
    assert torch.equal(many[:, mask], x[mask].expand(4, -1))
    assert torch.isfinite(many).all()
    assert not torch.equal(many[0][~mask], many[1][~mask])  # the draws differ


def test_missing_entries_never_reach_the_model():
    """Whatever a missing entry holds (0, NaN, the hidden true value), the result is the
    same: only x^o reaches the encoder."""
    program = toy_program()
    x, mask, x_true = toy_data()
    zeros = impute(program, x, mask, 10, seed=1)
    for hidden in (torch.where(mask, x, torch.nan), x_true):
        torch.testing.assert_close(impute(program, hidden, mask, 10, seed=1), zeros,
                                   rtol=0, atol=0)
    torch.testing.assert_close(impute(program, x, mask.double(), 10, seed=1), zeros,
                               rtol=0, atol=0)  # a 1/0 mask is read as bool


def test_bad_input_is_named():
    program = toy_program()
    x, mask, _ = toy_data()
    row, col = (int(i) for i in mask.nonzero()[0])
    x_bad = x.clone()
    x_bad[row, col] = torch.nan
    with pytest.raises(ValueError, match=f"nan at an observed entry \\(row {row}, column {col}"):
        impute(program, x_bad, mask, 10)
    with pytest.raises(ValueError, match="True/False"):
        impute(program, x, mask * 2.0, 10)
    with pytest.raises(ValueError, match="num_samples must be a whole number >= 1, got 10.0"):
        impute(program, x, mask, 10.0)
    with pytest.raises(ValueError, match="estimator"):
        impute(program, x, mask, 10, estimator="median")
    with pytest.raises(ValueError, match="mask"):
        impute(program, x, mask[:, :2], 10)


def test_predictive_checks_draw_z_and_z_mask_jointly_from_the_posterior():
    """In a masked not-MIWAE each replicate conditions on one importance sample's
    (z_l, z_mask_l), resampled with weight w~_l, not on z_mask from its prior."""
    program = toy_program("selfmasking", latent_mask=True)
    x, mask, _ = toy_data()
    pyro.set_rng_seed(4)
    with torch.no_grad():
        _, trace = log_importance_weights(program, x, mask, 30)
    pyro.set_rng_seed(4)
    with torch.no_grad():
        draws = checks._posterior_latents(program, x, mask, 6, 30)
    assert set(draws) == {"z", "z_mask"}
    z, z_mask = trace.nodes["z"]["value"], trace.nodes["z_mask"]["value"]  # (L, n, 1, d)
    for s in range(6):
        for i in range(len(x)):
            (k,) = torch.nonzero((z[:, i] == draws["z"][s, i]).all(-1).squeeze(-1))[0]
            assert torch.equal(draws["z_mask"][s, i], z_mask[k, i])
    x_rep, s_rep = checks.replicate(program, x, mask, num_replicates=3, num_samples=30)
    assert x_rep.shape == s_rep.shape == (3, *x.shape)


def _hand_weights_and_values(programs, x, mask, L, seed, estimator="sample"):
    """Per program, in the order the ensemble draws them from one seeded stream: the
    hand-written log-weights (L, N) and the values averaged (L, N, D)."""
    pyro.set_rng_seed(seed)
    out = []
    with torch.no_grad():
        for program in programs:
            _, trace = log_importance_weights(program, x, mask, L)
            eps_z, eps_x, eps_mask = noise_of(program, x, trace)
            log_w = reference_log_weights(program, x, mask, eps_z, eps_x, eps_mask)
            q = program.encoder(x).base_dist
            p_x = program.decoder(q.loc + q.scale * eps_z)
            value = p_x.loc if estimator == "mean" else p_x.loc + p_x.scale * eps_x
            out.append((log_w, value))
    return out


@pytest.mark.parametrize("estimator", ["mean", "sample"])
def test_a_pooled_ensemble_weighs_programs_by_their_evidence_per_row(estimator):
    """Pooled: softmax over all R x L hand-written log-weights; equal: the mean of each
    program's own self-normalised estimate."""
    programs = [toy_program("selfmasking_known", seed=0), toy_program("linear", seed=1)]
    x, mask, _ = toy_data()
    L = 30
    parts = _hand_weights_and_values(programs, x, mask, L, 5, estimator)
    log_w = torch.cat([w for w, _ in parts])
    value = torch.cat([v for _, v in parts])
    pooled = (torch.softmax(log_w, 0).unsqueeze(-1) * value).sum(0)
    equal = sum((torch.softmax(w, 0).unsqueeze(-1) * v).sum(0) for w, v in parts) / 2
    for ensemble, expected in (("pooled", pooled), ("equal", equal)):
        got = impute(programs, x, mask, L, estimator=estimator, sample_chunk=L, seed=5,
                     ensemble=ensemble)
        torch.testing.assert_close(got, torch.where(mask, x, expected), rtol=0, atol=1e-9)
    # The programs' weights differ per row, so pooling is not the equal average.
    assert not torch.allclose(pooled[~mask], equal[~mask], atol=1e-3)
    w = torch.exp(log_w)
    ess = effective_sample_size(programs, x, mask, L, sample_chunk=L, seed=5)
    torch.testing.assert_close(ess, w.sum(0) ** 2 / (w ** 2).sum(0), rtol=1e-9, atol=0)


def test_a_pooled_ensemble_of_one_program_is_the_single_run():
    """An ensemble of one, either way, is the single program's SNIS estimate (by hand), and
    its multiple imputations are the single program's draws."""
    program = toy_program("selfmasking_known")
    x, mask, _ = toy_data(n=20)
    [(log_w, value)] = _hand_weights_and_values([program], x, mask, 60, 3, "mean")
    expected = torch.where(mask, x, (torch.softmax(log_w, 0).unsqueeze(-1) * value).sum(0))
    for ensemble in ("pooled", "equal"):
        got = impute([program], x, mask, 60, seed=3, ensemble=ensemble, sample_chunk=60)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)
        assert torch.equal(multiple_impute([program], x, mask, 4, 60, seed=3,
                                           ensemble=ensemble),
                           multiple_impute(program, x, mask, 4, 60, seed=3))


def test_an_ensemble_of_no_program_or_an_unknown_weighting_is_refused():
    x, mask, _ = toy_data()
    with pytest.raises(ValueError, match="^an ensemble needs at least one program$"):
        impute([], x, mask, 10)
    with pytest.raises(ValueError, match="ensemble must be one of"):
        impute(toy_program(), x, mask, 10, ensemble="mixed")


def test_multiple_imputation_warns_when_weights_cannot_give_m_distinct_draws():
    program = toy_program("selfmasking_known")
    x, mask, _ = toy_data()
    draws, ess = multiple_impute(program, x, mask, m=5, num_samples=400, seed=0,
                                 return_ess=True)
    assert draws.shape == (5, *x.shape) and ess.shape == (len(x),)
    expected = effective_sample_size(program, x, mask, 400, seed=0)
    torch.testing.assert_close(ess, expected, rtol=1e-9, atol=0)  # same draws, same weights
    incomplete = ~mask.all(1)  # complete rows are drawn for nothing: never counted
    low = int((ess[incomplete] < 300).sum())
    assert low > 0  # 300 draws asked: rows fall short
    with pytest.warns(imputation.LowEffectiveSampleSize,
                      match=rf"^{low} of {int(incomplete.sum())} rows with missing entries "
                            r"have an effective sample size below the 300 draws asked "
                            r"\(smallest [\d.]+ of 400 importance"):
        multiple_impute(program, x, mask, m=300, num_samples=400, seed=0)
    with pytest.warns(imputation.LowEffectiveSampleSize, match=re.escape(
            "1 of 3 rows with missing entries have an effective sample size below the 2 "
            "draws asked (smallest 1.5 of 10 importance samples): their draws repeat a few "
            "samples and understate the spread; raise num_samples")):
        imputation._warn_low_ess(torch.tensor([1.5, 2.0, 9.0]), 2, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ESS = m is enough; one draw needs only one sample
        imputation._warn_low_ess(torch.tensor([2.0, 9.0]), 2, 10)
        imputation._warn_low_ess(torch.tensor([0.5]), 1, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing missing: nothing to warn about
        multiple_impute(program, x[:1], mask[:1], m=300, num_samples=400, seed=0)
    # "equal": Kish's ESS of the mixture weights w~_rl / R, from the hand-written weights
    three = [program, toy_program("linear", seed=1), toy_program("selfmasking", seed=2)]
    w = torch.cat([torch.softmax(log_w, 0) / 3
                   for log_w, _ in _hand_weights_and_values(three, x, mask, 400, 0)])
    equal = effective_sample_size(three, x, mask, 400, seed=0, ensemble="equal")
    torch.testing.assert_close(equal, 1 / (w ** 2).sum(0), rtol=1e-9, atol=0)


def test_an_equal_ensemble_draws_each_imputation_from_a_replica_chosen_uniformly(
        monkeypatch):
    """Two fake programs whose samples are their own index: draws split about evenly,
    and the ESS is that of the mixture weights, R^2 / sum_r 1 / ESS_r."""
    n, L = 50, 4
    log_w = {0: torch.zeros(L, n), 1: torch.log(torch.tensor([0.7, 0.1, 0.1, 0.1]))
             .unsqueeze(-1).expand(L, n)}

    def chunks(programs, x, *_):
        for p in programs:
            yield log_w[p], torch.full((L, n, 1), float(p))
    monkeypatch.setattr(imputation, "_weighted_chunks", chunks)
    monkeypatch.setattr(imputation, "_programs", tuple)
    monkeypatch.setattr(imputation, "_check", lambda programs, x, mask, L: (x, mask))
    x, mask = torch.zeros(n, 1), torch.zeros(n, 1, dtype=torch.bool)
    draws, ess = multiple_impute([0, 1], x, mask, m=400, num_samples=L, seed=0,
                                 ensemble="equal", return_ess=True)
    assert abs(float(draws.mean()) - 0.5) < 0.02
    mixture = torch.cat([torch.full((L,), 0.25), torch.tensor([0.7, 0.1, 0.1, 0.1])]) / 2
    torch.testing.assert_close(ess, torch.full((n,), 1 / float((mixture ** 2).sum())))
    pooled = multiple_impute([0, 1], x, mask, m=400, num_samples=L, seed=0)
    # pooled: program 1's weights sum to 1, program 0's to 4, so it draws 1 a fifth of
    # the time
    assert abs(float(pooled.mean()) - 0.2) < 0.02


def test_warnings_name_the_callers_line():
    """Through the function and through the imputer, the low-ESS warning names the line
    that called the package (not a line inside it, nor torch.no_grad's wrapper)."""
    from notmiwae.inference import NotMIWAEImputer

    program = toy_program("selfmasking_known")
    x, mask, _ = toy_data()
    with pytest.warns(imputation.LowEffectiveSampleSize) as caught:
        multiple_impute(program, x, mask, m=300, num_samples=400, seed=0)
    rng = np.random.default_rng(0)
    frame = rng.normal(size=(40, 3))
    frame[frame[:, 0] > 0, 0] = np.nan
    imputer = NotMIWAEImputer(iterations=2, hidden=8, num_samples=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few rows: warned at fit, not tested here
        imputer.fit(frame)
    with pytest.warns(imputation.LowEffectiveSampleSize) as through_the_imputer:
        imputer.sample(frame, m=50)
    low_ess = [w for w in [*caught, *through_the_imputer]
               if w.category is imputation.LowEffectiveSampleSize]
    assert low_ess and {w.filename for w in low_ess} == {__file__}
    # Through scikit-learn's wrappers too: the few-rows warning of fit
    from sklearn.pipeline import make_pipeline

    for fit in (lambda: clone_of(imputer).fit_transform(frame),
                lambda: make_pipeline(clone_of(imputer)).fit(frame)):
        with pytest.warns(UserWarning, match="only 40 rows") as few_rows:
            fit()
        assert {w.filename for w in few_rows if "only 40 rows" in str(w.message)} \
            == {__file__}


def clone_of(estimator):
    from sklearn.base import clone

    return clone(estimator)


def test_block_sizes_per_device_and_a_known_targets_type():
    """A GPU takes blocks of 1,024 rows x 1,000 samples (decided by the device's type, so
    checked without one); a known target comes back as an (N, 1) column of x's dtype."""
    assert imputation.block_sizes(torch.device("cuda"), None, None) == (1024, 1000)
    assert imputation.block_sizes(torch.device("cuda"), 7, 9) == (7, 9)
    from notmiwae.models import ModelConfig, build_model

    program = build_model(ModelConfig(n_features=3, target=True))
    y = imputation._known_target(program, torch.arange(4, dtype=torch.float64),
                                 torch.zeros(4, 3))
    assert y.dtype == torch.float32 and y.tolist() == [[0.0], [1.0], [2.0], [3.0]]


@pytest.mark.parametrize("num_samples, sample_chunk, expected", [
    (500, None, (32, 500)),  # about 16,384 (row, sample) pairs a block on the CPU
    (100, None, (128, 500)),  # 16,384 // 100 = 163: the power of two below, 128
    (10, None, (1024, 500)),  # 1,638 rows would do: at most 1,024
    (1, None, (1024, 500)),  # (a chunk of 500 samples holds all L)
    (10_000, None, (32, 500)),  # chunks of 500 samples
    (10_000, 50, (256, 50)),
    (10_000, 600, (32, 600)),  # 27 rows would do: at least 32
    (20_000, 20_000, (32, 20_000)),  # chunks beyond 16,384 samples: 32 rows (was an error)
])
def test_cpu_block_sizes(num_samples, sample_chunk, expected):
    cpu = torch.device("cpu")
    assert imputation.block_sizes(cpu, None, sample_chunk, num_samples) == expected
    assert imputation.block_sizes(cpu, 5, sample_chunk, num_samples)[0] == 5


def test_one_importance_sample_is_enough_to_impute():
    x, mask, _ = toy_data()
    out = impute(toy_program(), x, mask, 1, seed=0)
    assert torch.equal(out[mask], x[mask]) and torch.isfinite(out).all()
