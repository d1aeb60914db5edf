"""The experiment runners of the two extensions, on tiny settings."""

import numpy as np
import pandas as pd
import pytest

from notmiwae.experiments import compare, early_stopping, joint_diagnosis, masked, supervised
from notmiwae.experiments.masked import model_names, pairs
from notmiwae.experiments.report import interval, paired_grid, plot_pairs, t_interval
from notmiwae.experiments.supervised import fit_generative
from notmiwae.inference.imputation import effective_sample_size, impute, weight_overlap


def test_masked_runs_pair_by_seed():
    assert len(model_names()) == 12 and "masked-notmiwae-ppca:linear" in model_names()
    runs = pd.DataFrame({
        "dataset": ["red"] * 6, "seed": [0, 1, 2] * 2,
        "model": ["notmiwae:linear"] * 3 + ["masked-notmiwae:linear"] * 3,
        "rmse": [1.0, 1.2, 1.1, 0.9, 1.3, 1.0],
        "final_bound": [-6.0, -5.0, -7.0, -6.5, -4.0, -7.6]})
    row = pairs(runs).iloc[0]
    assert row["seeds"] == 3 and row["masked_better_seeds"] == 2
    assert row["relative_change_percent"] == pytest.approx(100 * (-0.1 / 3) / 1.1)
    assert row["difference"] == interval(np.array([-0.1, 0.1, -0.1]))
    bound = pairs(runs, "final_bound").iloc[0]  # higher is better; changes relative to |bound|
    assert bound["masked_better_seeds"] == 1
    assert bound["relative_change_percent"] == pytest.approx(100 * (-0.1 / 3) / 6.0)
    assert bound["difference"] == interval(np.array([-0.5, 1.0, -0.6]))


def test_masked_report_pairs_only_the_runs_of_its_setting(tmp_path):
    """--report-only reads runs.csv: other iteration counts, L, seeds beyond --seeds and
    data sets not named are left out; spaces in --datasets are allowed."""
    def runs(dataset, model, rmse, iterations=100, samples=10, seeds=(0, 1)):
        return pd.DataFrame({"dataset": dataset, "model": model, "seed": list(seeds),
                             "iterations": iterations, "impute_samples": samples,
                             "offset": 0.0, "rmse": rmse, "final_bound": -1.0})
    pd.concat([runs("red", "notmiwae:linear", 1.0), runs("red", "masked-notmiwae:linear", 0.9),
               runs("red", "masked-notmiwae:linear", 5.0, samples=99),  # another L
               runs("red", "masked-notmiwae:linear", 5.0, iterations=7),
               runs("red", "masked-notmiwae:linear", 5.0, seeds=(2, 3)),  # beyond --seeds 2
               runs("white", "notmiwae:linear", 1.0),
               runs("white", "masked-notmiwae:linear", 1.1),
               runs("yeast", "notmiwae:linear", 1.0)]).to_csv(tmp_path / "runs.csv", index=False)
    masked.main(["--datasets", "red, white", "--seeds", "2", "--iterations", "100",
                 "--impute-samples", "10", "--report-only", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "pairs.csv")
    assert list(table["dataset"]) == ["red", "white"] and (table["seeds"] == 2).all()
    assert table["rmse_masked"].tolist() == pytest.approx([0.9, 1.1])
    runs("red", "notmiwae:linear", 1.0).assign(model="masked-notmiwae:linear").to_csv(
        tmp_path / "runs.csv", mode="a", header=False, index=False)  # a seed twice
    with pytest.raises(SystemExit, match="seed 0 appears more than once"):
        masked.main(["--datasets", "red", "--seeds", "2", "--iterations", "100",
                     "--impute-samples", "10", "--report-only", "--out", str(tmp_path)])


def test_grid_marks_only_intervals_that_exclude_zero():
    rows = {"dataset": ["red"] * 3 + ["white"] * 3, "seed": [0, 1, 2] * 2}
    plain = pd.DataFrame({**rows, "model": "m", "rmse": [1.0, 1.2, 1.1, 1.0, 1.0, 1.0]})
    masked = pd.DataFrame({**rows, "model": "masked-m",
                           "rmse": [0.9, 1.3, 1.0, 0.9, 0.91, 0.89]})
    table = pairs(pd.concat([plain, masked]))
    assert table["upper"].iloc[1] < 0 < table["upper"].iloc[0]
    grid = paired_grid(table)
    assert "| m | -3.0% no clear difference | -10.0% better |" in grid
    worse = paired_grid(table, higher_is_better=True)
    assert "| -10.0% worse |" in worse


def test_relative_interval_is_the_difference_interval_over_the_plain_mean(tmp_path):
    rows = {"dataset": ["red"] * 3, "seed": [0, 1, 2]}
    plain = pd.DataFrame({**rows, "model": "m", "rmse": [1.0, 1.2, 1.1]})
    masked = pd.DataFrame({**rows, "model": "masked-m", "rmse": [0.9, 1.3, 1.0]})
    row = pairs(pd.concat([plain, masked])).iloc[0]
    _, lower, upper = t_interval([-0.1, 0.1, -0.1])
    assert row["relative_lower_percent"] == pytest.approx(100 * lower / 1.1)
    assert row["relative_upper_percent"] == pytest.approx(100 * upper / 1.1)
    plot_pairs(pairs(pd.concat([plain, masked])), str(tmp_path / "pairs.png"),
               ("plain", "masked"))
    assert (tmp_path / "pairs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interval_is_a_t_interval():
    mean, rest = interval([1.0, 2.0, 3.0]).split(" ", 1)
    lo, hi = (float(v) for v in rest.strip("[]").split(", "))
    assert float(mean) == 2.0 and hi - 2.0 == pytest.approx(4.303 * 1 / np.sqrt(3), abs=1e-3)
    assert lo == pytest.approx(4.0 - hi)


def test_supervised_experiment_runs_every_method(tmp_path):
    assert supervised.main(["--datasets", "concrete", "--seeds", "2", "--iterations", "20",
                            "--impute-samples", "10", "--jobs", "1",
                            "--out", str(tmp_path)]) == 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs["method"].unique()) == ["joint", "mean-imputed", "oracle", "two-stage"]
    assert len(runs) == 8 and runs["test_mse"].notna().all()
    assert runs.loc[runs["method"] == "oracle", "rmse_test"].isna().all()
    assert "joint - two-stage" in (tmp_path / "summary.md").read_text()
    split = supervised.split("concrete", 0)
    assert split["x_train"].shape == (824, 8) and split["x_test"].shape == (206, 8)
    assert not split["m_test"][:, :4].all() and split["m_test"][:, 4:].all()


def test_compare_pairs_two_folders_by_seed(tmp_path, capsys):
    rows = {"dataset": ["red"] * 3, "model": ["miwae"] * 3, "seed": [0, 1, 2]}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pd.DataFrame({**rows, "rmse": [1.0, 1.2, 1.1]}).to_csv(tmp_path / "a" / "runs.csv")
    pd.DataFrame({**rows, "rmse": [0.9, 1.3, 1.0]}).to_csv(tmp_path / "b" / "runs.csv")
    assert compare.main([str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "x,y",
                         "--out", str(tmp_path / "c.md")]) == 0
    line = next(t for t in (tmp_path / "c.md").read_text().splitlines() if "| red |" in t)
    assert f"| {interval(np.array([-0.1, 0.1, -0.1]))} |" in line and line.endswith("| 2/3 |")
    pd.DataFrame({**rows, "seed": [0, 0, 1], "rmse": 1.0}).to_csv(tmp_path / "b" / "runs.csv")
    with pytest.raises(SystemExit, match="seed 0 appears more than once"):
        compare.main([str(tmp_path / "a"), str(tmp_path / "b")])
    with pytest.raises(SystemExit, match="no runs.csv"):
        compare.main([str(tmp_path / "a"), str(tmp_path / "nothing")])


@pytest.mark.parametrize("runner", [supervised, joint_diagnosis])
def test_supervised_runners_name_a_data_set_without_target(runner, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["--datasets", "red, banknote", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "'banknote' has no target; ones that do: ['concrete', 'red', 'white']" \
        in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_learning_curve_continues_its_checkpoints_and_resumes(tmp_path):
    args = ["--datasets", "concrete", "--impute-samples", "5", "--curve-every", "10",
            "--out", str(tmp_path)]
    joint_diagnosis.main([*args, "--iterations", "20"])
    joint_diagnosis.main([*args, "--iterations", "30"])  # adds only the checkpoint at 30
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert curve["iteration"].tolist() == [10, 20, 30]
    assert np.isfinite(curve[["mse_joint", "mse_joint_train", "sigma", "bound"]]).all().all()
    # The last checkpoint's model is the uninterrupted 30-iteration run's.
    d = supervised.split("concrete", 0)
    alone = supervised.fit_generative(d, True, [0], 30)
    xe, me = supervised._tensors(d["x_test"], d["m_test"])
    pred = joint_diagnosis.predict_target(alone.program, xe, me, 5, seed=0).numpy()
    mse = np.mean((pred * d["y_sd"] + d["y_mean"] - d["y_test"]) ** 2)
    assert curve["mse_joint"].iloc[-1] == pytest.approx(mse, rel=1e-6)


def test_joint_diagnosis_takes_one_trained_model_apart(monkeypatch):
    fits = []

    def keep(*args, **kwargs):  # the trained model, to recompute the row from it
        fits.append(fit_generative(*args, **kwargs))
        return fits[-1]

    monkeypatch.setattr(joint_diagnosis, "fit_generative", keep)
    row = joint_diagnosis.diagnose("concrete", seed=0, iterations=20, samples=30)
    assert row["dataset"] == "concrete" and row["sigma"] > 0
    values = [row[k] for k in ("mse_joint", "mse_f_complete", "mse_f_imputed",
                               "mse_f_complete_train", "rmse_train_given_y", "rmse_train",
                               "mse_joint_train", "mse_f_imputed_train",
                               "mse_joint_train_given_y", "mse_mlp_complete_train",
                               "mse_mlp_complete", "rmse_train_sample_given_y",
                               "rmse_train_sample")]
    assert np.isfinite(values).all()
    # The known target moves the training rows' imputations.
    assert row["rmse_train_given_y"] != row["rmse_train"]
    assert row["rmse_train_sample_given_y"] != row["rmse_train_sample"]
    assert row["mse_joint_train_given_y"] != row["mse_joint_train"]
    # ESS (as a fraction of the draws) and overlap: L = 30 draws, and L = K = 20 as in training
    program, d = fits[0].program, supervised.split("concrete", 0)
    xt, mt = supervised._tensors(d["x_train"], d["m_train"])
    y = supervised.standardised_target(d)
    incomplete = ~mt.all(1)
    for key, n, given in (("ess_train", 30, None), ("ess_train_given_y", 30, y),
                          ("ess_k_train", 20, None), ("ess_k_train_given_y", 20, y)):
        ess = effective_sample_size(program, xt, mt, n, seed=0, y=given)[incomplete]
        assert row[key] == pytest.approx(float(ess.mean()) / n, rel=1e-6), key
    for key, n in (("overlap_train", 30), ("overlap_k_train", 20)):
        overlap = weight_overlap(program, xt, mt, n, seed=0, y=y)[incomplete]
        assert row[key] == pytest.approx(float(overlap.mean()), rel=1e-6), key
    imputed = impute(program, xt, mt, 30, seed=0).numpy()
    assert row["rmse_train"] == pytest.approx(
        np.sqrt(np.mean((imputed - d["x_train"])[~d["m_train"]] ** 2)), rel=1e-6)
    assert row["overlap_train"] < 1  # y moves some weight
    x = np.random.default_rng(0).normal(size=(50, 3))
    slopes = joint_diagnosis._slopes(lambda v: v @ np.array([2.0, -0.5, 0.0]) + v[:, 2] ** 2, x)
    np.testing.assert_allclose(slopes, [2.0, 0.5, 2 * np.abs(x[:, 2]).mean()], rtol=1e-9)


def test_validation_rows_are_set_aside_from_the_training_rows():
    d = supervised.split("concrete", 0)
    fit_part, val = early_stopping.set_aside(d, 0)
    n = len(d["x_train"])
    assert len(val) == int(0.2 * n) and len(fit_part["x_train"]) == n - len(val)
    keep = np.setdiff1d(np.arange(n), val)  # the rows the model fits: all the others
    assert np.array_equal(fit_part["x_train"], d["x_train"][keep])
    assert np.array_equal(fit_part["y_train"], d["y_train"][keep])
    assert np.array_equal(fit_part["m_train"], d["m_train"][keep])
    assert np.array_equal(fit_part["x_test"], d["x_test"])  # test rows untouched
    assert np.array_equal(early_stopping.set_aside(d, 0)[1], val)  # fixed by the split seed


def test_early_stopping_keeps_each_seeds_best_checkpoint_and_resumes(tmp_path, monkeypatch):
    args = ["--datasets", "concrete", "--seeds", "2", "--iterations", "30", "--every", "10",
            "--select-samples", "5", "--impute-samples", "5", "--jobs", "1",
            "--reference", str(tmp_path / "none.csv")]
    # Tiny runs improve at every checkpoint; make the first look best, so that the kept
    # parameters differ from the last ones.
    measure, seen = early_stopping.validation_mse, []

    def first_is_best(*a, **k):
        seen.append(1)
        return measure(*a, **k) + (0.0 if len(seen) <= 2 else 1e6)
    monkeypatch.setattr(early_stopping, "validation_mse", first_is_best)
    early_stopping.main([*args, "--out", str(tmp_path / "whole")])
    monkeypatch.undo()
    runs = pd.read_csv(tmp_path / "whole" / "runs.csv")
    checks = pd.read_csv(tmp_path / "whole" / "validation.csv")
    assert checks["iteration"].tolist() == [10, 10, 20, 20, 30, 30]
    for seed, part in checks.groupby("seed"):
        best = part.loc[part["validation_mse"].idxmin()]
        row = runs[(runs["seed"] == seed) & (runs["method"] == "joint-stopped")].iloc[0]
        assert row["stop_iteration"] == best["iteration"]
        assert row["validation_mse"] == pytest.approx(best["validation_mse"])
    last = runs[runs["method"] == "joint-fit-rows"]
    assert (last["stop_iteration"] == 30).all() and last["validation_mse"].isna().all()
    stopped = runs[runs["method"] == "joint-stopped"]
    assert (stopped["stop_iteration"] == 10).all()
    assert not np.allclose(stopped["test_mse"], last["test_mse"])
    # The kept parameters are the best checkpoint's: a run trained that far predicts alike.
    d = supervised.split("concrete", 0)
    fit_part, _ = early_stopping.set_aside(d, 0)
    xe, me = supervised._tensors(d["x_test"], d["m_test"])
    for r, row in runs[runs["method"] == "joint-stopped"].reset_index().iterrows():
        alone = supervised.fit_generative(fit_part, True, [0, 1], int(row["stop_iteration"]))
        pred = supervised.predict_y(alone.replica(r), xe, me, 5, r, d)
        assert np.mean((pred - d["y_test"]) ** 2) == pytest.approx(row["test_mse"], rel=1e-5)
    # Stopped after its first checkpoint, the run resumes there and ends the same.
    fit_generative, calls = early_stopping.fit_generative, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit_generative(*a, **k)
    seen.clear()
    monkeypatch.setattr(early_stopping, "validation_mse", first_is_best)
    monkeypatch.setattr(early_stopping, "fit_generative", interrupted)
    with pytest.raises(KeyboardInterrupt):
        early_stopping.main([*args, "--out", str(tmp_path / "resumed")])
    monkeypatch.setattr(early_stopping, "fit_generative", fit_generative)
    evaluate = early_stopping._evaluate
    monkeypatch.setattr(early_stopping, "_evaluate", _interrupt)  # stopped once more,
    with pytest.raises(KeyboardInterrupt):  # after the last checkpoint
        early_stopping.main([*args, "--out", str(tmp_path / "resumed")])
    monkeypatch.setattr(early_stopping, "_evaluate", evaluate)
    early_stopping.main([*args, "--out", str(tmp_path / "resumed")])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "resumed" / "validation.csv"), checks)
    again = pd.read_csv(tmp_path / "resumed" / "runs.csv")
    pd.testing.assert_frame_equal(again.drop(columns="train_seconds"),
                                  runs.drop(columns="train_seconds"), rtol=1e-5)
    assert "| concrete | joint-stopped |" in (tmp_path / "whole" / "summary.md").read_text()


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_scale_floor_study_pairs_runs_by_seed_and_measures_the_floor(tmp_path):
    """The unfloored decoder has sigma = softplus(f) exactly; floor_share counts the
    observed entries whose softplus part is under 1e-3; runs pair by seed."""
    import torch

    from notmiwae.experiments import scale_floor
    from notmiwae.models import ModelConfig, build_model
    from notmiwae.models.registry import DECODERS

    scale_floor.register_unfloored()
    try:
        program = build_model(ModelConfig(n_features=3, missing="ignorable",
                                          decoder=scale_floor.UNFLOORED))
        assert program.decoder.min_scale == 0.0
        x, mask = torch.randn(6, 3), torch.tensor([[True, True, False]] * 6)
        with torch.no_grad():
            program.decoder.scale.bias.fill_(-30.0)  # softplus(-30) ~ 1e-13: every entry
            program.decoder.scale.weight.zero_()
            assert scale_floor.floor_share(program, x, mask) == 1.0
            program.decoder.scale.bias[0] = 0.0  # softplus(0) = 0.69: column 0 is not
            assert scale_floor.floor_share(program, x, mask) == pytest.approx(0.5)
    finally:
        DECODERS.pop(scale_floor.UNFLOORED, None)
    runs = pd.DataFrame({"dataset": "concrete", "model": "miwae", "seed": [0, 1],
                         "iterations": 100, "impute_samples": 10, "offset": 0.0,
                         "rmse": [1.0, 1.2], "floor_share": 0.1})
    against = pd.DataFrame({"dataset": "concrete", "model": "miwae", "seed": [1, 0, 0, 0],
                            "iterations": [100, 100, 50, 100], "impute_samples": 10,
                            "offset": [0.0, 0.0, 0.0, 0.5], "rmse": [1.5, 1.1, 9.0, 9.0]})
    against.to_csv(tmp_path / "runs.csv", index=False)
    text = scale_floor.comparison(runs, tmp_path / "runs.csv")
    # differences -0.1 and -0.3: mean -0.2, sd 0.141, s.e. 0.141 / sqrt(2) = 0.100
    assert "paired difference -0.200 +- 0.100 (s.e., 2 seeds)" in text
    assert "without the floor 1.100, with it 1.300" in text
    pd.concat([against, against.head(1)]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(pd.errors.MergeError):  # a run in the other folder twice: refused
        scale_floor.comparison(runs, tmp_path / "twice.csv")


def test_scale_floor_study_refuses_other_decoders_and_records_divergence(monkeypatch):
    from notmiwae.experiments import scale_floor
    from notmiwae.experiments.protocol import RunSpec
    from notmiwae.inference.stopping import TrainingDiverged

    with pytest.raises(SystemExit):  # PPCA-like: a linear decoder, no softplus scale
        scale_floor.parse_args(["--models", "notmiwae-ppca:selfmasking", "--out", "x"])

    def diverge(*args, **kwargs):
        raise TrainingDiverged(1234, float("nan"), None)

    monkeypatch.setattr(scale_floor, "run_group", diverge)
    specs = [RunSpec("concrete", "miwae", s, 10, 5) for s in (0, 1)]
    rows = scale_floor.group_rows(specs, None)
    assert [(r["seed"], r["diverged_at"]) for r in rows] == [(0, 1234), (1, 1234)]
    assert all(np.isnan(r["rmse"]) for r in rows)
