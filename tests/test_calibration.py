"""Interval, coverage, CRPS and Rubin arithmetic of the coverage study, by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from notmiwae.experiments import coverage, coverage_report
from notmiwae.experiments.calibration import (
    central_interval,
    crps,
    interval_scores,
    pooled_column_means,
)
from notmiwae.experiments.metrics import rmse_missing
from notmiwae.experiments.protocol import RunSpec, prepare, train_group
from notmiwae.inference.imputation import multiple_impute
from notmiwae.inference.posterior_sampling import nuts_draws


def test_central_interval_is_the_quantiles_at_both_tails():
    draws = np.arange(11.0).reshape(11, 1)  # 0, 1, ..., 10
    lo, hi = central_interval(draws, 0.5)
    assert (lo[0], hi[0]) == (2.5, 7.5)  # quantiles 0.25 and 0.75, linear interpolation
    lo, hi = central_interval(draws, 0.9)
    assert (lo[0], hi[0]) == pytest.approx((0.5, 9.5))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        central_interval(draws, 1.0)


def test_coverage_counts_truths_inside_with_ends_included_and_width_is_the_mean():
    # two entries; 5 draws each: entry 0 draws 0..4, entry 1 draws 0..8 step 2
    draws = np.stack([np.arange(5.0), 2 * np.arange(5.0)], axis=1)
    # 50%: entry 0 [1, 3], entry 1 [2, 6]; truth 3 is on the upper end, 7 outside
    scores = interval_scores(draws, np.array([3.0, 7.0]), levels=[0.5])
    assert scores == [{"nominal": 0.5, "coverage": 0.5, "width": 3.0}]
    assert interval_scores(draws, np.array([1.0, 2.0]), levels=[0.5])[0]["coverage"] == 1.0


def test_crps_of_the_empirical_distribution_against_its_integral():
    rng = np.random.default_rng(0)
    draws, truth = rng.normal(size=(7, 3)), np.array([-0.3, 0.1, 2.5])
    grid = np.linspace(-8, 8, 400_001)
    for j in range(3):
        cdf = (draws[:, j][:, None] <= grid).mean(0)
        integral = np.trapezoid((cdf - (grid >= truth[j])) ** 2, grid)
        assert crps(draws, truth)[j] == pytest.approx(integral, abs=1e-4)
    # the pair form, written out
    pairs = np.abs(draws[:, None, :] - draws[None, :, :]).sum((0, 1))
    direct = np.abs(draws - truth).mean(0) - pairs / (2 * 7**2)
    np.testing.assert_allclose(crps(draws, truth), direct, rtol=1e-12)
    # one draw: the absolute error
    np.testing.assert_allclose(crps(draws[:1], truth), np.abs(draws[0] - truth))


def test_rubin_column_means_by_hand():
    rng = np.random.default_rng(1)
    completed = rng.normal(size=(4, 30, 2))  # m = 4 data sets of 30 rows
    got = pooled_column_means(completed, level=0.9)
    for j, row in enumerate(got):
        q = completed[:, :, j].mean(1)
        u = completed[:, :, j].var(1, ddof=1) / 30
        b, ubar = q.var(ddof=1), u.mean()
        t = ubar + (1 + 1 / 4) * b
        df = 3 * (1 + ubar / ((1 + 1 / 4) * b)) ** 2
        half = stats.t.ppf(0.95, df) * np.sqrt(t)
        assert row["estimate"] == pytest.approx(q.mean())
        assert row["se"] == pytest.approx(np.sqrt(t)) and row["df"] == pytest.approx(df)
        assert (row["lo"], row["hi"]) == pytest.approx((q.mean() - half, q.mean() + half))


def test_the_coverage_study_scores_every_run_and_renders(tmp_path):
    out = tmp_path / "cov"
    args = ["--datasets", "banknote", "--models", "notmiwae:selfmasking_known,mice",
            "--seeds", "2", "--iterations", "20", "--impute-samples", "30", "--draws", "8",
            "--ensembles", "--out", str(out)]
    assert coverage.main(args) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(zip(runs["model"], runs["ensemble"], runs["seed"], strict=True)) == [
        ("mice", "none", 0), ("mice", "none", 1),
        ("notmiwae:selfmasking_known", "equal", 0), ("notmiwae:selfmasking_known", "none", 0),
        ("notmiwae:selfmasking_known", "none", 1), ("notmiwae:selfmasking_known", "pooled", 0)]
    summary = pd.read_csv(out / "summary.csv")
    assert {"dataset", "model", "seed", "nominal", "coverage", "width", "crps"} <= set(summary)
    assert len(summary) == 6 * 3
    # seed 1's row, recomputed by hand from its kept group (reloaded, not trained again)
    specs = [RunSpec("banknote", "notmiwae:selfmasking_known", s, 20, 30, init="glorot")
             for s in (0, 1)]
    result, xt, mt = train_group(specs, snapshots=out / "trained")
    draws = multiple_impute(result.replica(1), xt, mt, 8, 30, seed=1).double().numpy()
    x, mask = prepare("banknote")
    got = summary[(summary["ensemble"] == "none") & (summary["seed"] == 1)
                  & (summary["model"] == "notmiwae:selfmasking_known")]
    for nominal, row in zip([0.5, 0.9, 0.95], got.sort_values("nominal").itertuples(),
                            strict=True):
        lo, hi = np.quantile(draws[:, ~mask], [(1 - nominal) / 2, (1 + nominal) / 2], axis=0)
        assert row.coverage == pytest.approx(np.mean((lo <= x[~mask]) & (x[~mask] <= hi)))
        assert row.width == pytest.approx(np.mean(hi - lo))
        assert row.crps == pytest.approx(crps(draws[:, ~mask], x[~mask]).mean())
    assert (out / "trained").is_dir()  # the trained group, kept for reuse
    assert coverage.main(args) == 0  # everything done: nothing runs again
    assert len(pd.read_csv(out / "runs.csv")) == 6
    text = coverage_report.render(out)
    assert "| banknote | mice | none |" in text and (out / "coverage.png").stat().st_size
    # Rubin's column means are judged on banknote's two incomplete columns only (of four)
    _, _, means = coverage_report.load(out)
    table = coverage_report.means_table(means).set_index(["model", "ensemble"])
    assert table.loc[("mice", "none"), "intervals"] == 2 * 2
    assert table.loc[("notmiwae:selfmasking_known", "pooled"), "intervals"] == 2


def test_the_coverage_study_draws_by_nuts_when_asked_and_keeps_its_sampler(tmp_path):
    out = tmp_path / "nuts"
    args = ["--datasets", "banknote", "--models", "notmiwae:selfmasking_known", "--seeds",
            "1", "--iterations", "5", "--draws", "3", "--sampler", "nuts", "--warmup", "4",
            "--thin", "1", "--out", str(out)]
    with pytest.raises(SystemExit):
        coverage.parse_args(args + ["--ensembles"])
    assert coverage.main(args) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["ensemble"]) == ["none"] and {"n_eff_median", "r_hat_max"} <= set(runs)
    # the same draws again from the kept group and the seed, scored by hand
    specs = [RunSpec("banknote", "notmiwae:selfmasking_known", 0, 5, 10_000, init="glorot")]
    result, xt, mt = train_group(specs, snapshots=out / "trained")
    draws, _ = nuts_draws(result.replica(0), xt, mt, 3, 4, 1, seed=0)
    x, mask = prepare("banknote")
    draws = draws.double().numpy()
    assert runs["rmse"].iloc[0] == pytest.approx(rmse_missing(x, draws.mean(0), mask))
    summary = pd.read_csv(out / "summary.csv")
    assert summary["crps"].iloc[0] == pytest.approx(crps(draws[:, ~mask], x[~mask]).mean())
    with pytest.raises(SystemExit, match="sampler 'nuts' -> 'sir'"):
        coverage.main(args[:-8] + ["--out", str(out)])


def test_the_coverage_study_resumes_cleanly_and_refuses_other_settings(tmp_path):
    """Rows a stopped run left in summary.csv without its runs.csv row are dropped and
    the run scored again once; other settings into the same folder are refused; a
    group kept with other settings is trained afresh, not reused."""
    out = tmp_path / "cov"
    args = ["--datasets", "banknote", "--models", "mice", "--seeds", "2", "--draws", "4",
            "--out", str(out)]
    assert coverage.main(args) == 0
    runs = pd.read_csv(out / "runs.csv")
    runs[runs["seed"] == 0].to_csv(out / "runs.csv", index=False)  # seed 1 "stopped"
    assert coverage.main(args) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 * 3 and sorted(pd.read_csv(out / "runs.csv")["seed"]) == [0, 1]
    with pytest.raises(SystemExit, match="draws 4 -> 5"):
        coverage.main(args[:-4] + ["--draws", "5", "--out", str(out)])
    with pytest.raises(SystemExit, match="particles 20 -> 5"):
        coverage.main(args[:-2] + ["--particles", "5", "--out", str(out)])
    with pytest.raises(SystemExit):
        coverage.parse_args(["--draws", "1", "--out", str(out)])
    kept = tmp_path / "kept"  # a group kept with PyTorch's initialisation
    other = ["--datasets", "banknote", "--models", "notmiwae:selfmasking", "--seeds", "1",
             "--iterations", "5", "--impute-samples", "10", "--draws", "3"]
    assert coverage.main(other + ["--init", "torch", "--out", str(kept)]) == 0
    assert coverage.main(other + ["--trained", str(kept / "trained"),
                                  "--out", str(tmp_path / "glorot")]) == 0
    assert any((tmp_path / "glorot" / "trained").iterdir())  # trained here instead
    # --particles K trains with K importance samples in the bound: a kept group of K = 20
    # is not reused for K = 3, and the group trained here says K = 3
    k3 = tmp_path / "k3"
    assert coverage.main(other + ["--particles", "3", "--trained",
                                  str(tmp_path / "glorot" / "trained"), "--out", str(k3)]) == 0
    assert any((k3 / "trained").iterdir())  # trained here, not taken from the K = 20 group
    # a --trained folder without the group is left as it was: nothing trained into it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert coverage.main(other + ["--seeds", "2", "--trained", str(empty),
                                  "--out", str(tmp_path / "two")]) == 0
    assert not any(empty.iterdir()) and any((tmp_path / "two" / "trained").iterdir())
    # a folder begun before --particles existed holds runs of the paper's K = 20
    old = tmp_path / "old"
    old.mkdir()
    (old / "runs.csv").write_text("dataset\n")
    (old / "settings.json").write_text(
        '{"iterations": 100000, "impute_samples": 10000, "draws": 100, "init": "glorot"}')
    with pytest.raises(SystemExit, match="particles 20 -> 3"):
        coverage.main(["--models", "mice", "--draws", "100", "--particles", "3",
                       "--out", str(old)])
    spec = RunSpec("banknote", "notmiwae:selfmasking", 0, 5, 10, init="glorot",
                   num_particles=3)
    result, _, _ = train_group([spec], snapshots=k3 / "trained")
    assert result.train_config.num_particles == 3


def test_the_glance_table_averages_coverage_over_seeds_per_model_and_data_set():
    summary = pd.DataFrame({
        "dataset": ["yeast"] * 4 + ["red"] * 2,
        "model": ["mice", "mice", "mice", "ppca"] + ["ppca", "ppca"],
        "ensemble": ["none", "none", "none", "pooled", "none", "none"],
        "seed": [0, 1, 0, 0, 0, 1],
        "nominal": [0.9, 0.9, 0.5, 0.9, 0.9, 0.9],
        "coverage": [0.2, 0.4, 0.99, 0.8, 0.5, 0.7]})
    table = coverage_report.glance_table(summary).set_index("model, coverage 90%")
    assert list(table.columns) == ["yeast", "red"]  # data sets in the order they came
    assert table.loc["mice", "yeast"] == "0.300"  # the 50% row left out
    assert table.loc["mice", "red"] == "-"
    assert table.loc["ppca (pooled)", "yeast"] == "0.800"
    assert table.loc["ppca", "red"] == "0.600" and table.loc["ppca", "yeast"] == "-"
    # a data set whose only rows have no coverage (no missing entry) is still a column
    empty = summary.tail(1).assign(dataset="white", coverage=np.nan)
    table = coverage_report.glance_table(pd.concat([summary, empty]))
    assert list(table["white"]) == ["-", "-", "-"]
