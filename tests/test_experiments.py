"""Data sets, mechanisms, baselines and the resumable runner."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from notmiwae.experiments import imputation_bias, uci
from notmiwae.experiments.baselines import impute_baseline
from notmiwae.experiments.datasets import DATASETS, load_dataset
from notmiwae.experiments.mechanisms import mcar, paper_mnar, standardise
from notmiwae.experiments.metrics import mask_accuracy, rmse_missing, signed_error_missing
from notmiwae.experiments.outputs import append_rows, check_settings, log_command
from notmiwae.experiments.protocol import (
    RunSpec,
    group_replicas,
    prepare,
    run_group,
    snapshot_path,
    train_group,
)
from notmiwae.inference import device, training
from notmiwae.inference.imputation import impute
from notmiwae.models.registry import build_model, config_from_name

# Shapes, missing rates and mean-imputation RMSE from experiments/data/README.md.
EXPECTED = {"banknote": (1372, 4, 0.257, 1.726), "concrete": (1030, 9, 0.209, 1.847),
            "red": (1599, 11, 0.175, 1.838), "white": (4898, 11, 0.197, 1.739),
            "yeast": (1484, 6, 0.242, 1.688), "breast": (569, 30, 0.200, 1.820)}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_loaders_and_mechanism_match_the_documented_table(name):
    n, d, rate, mean_rmse = EXPECTED[name]
    x = standardise(load_dataset(name).to_numpy())
    mask = paper_mnar(x)
    assert x.shape == (n, d)
    assert 1 - mask.mean() == pytest.approx(rate, abs=6e-4)
    assert mask[:, d // 2:].all()  # the second half stays observed
    imputed = impute_baseline("mean", np.where(mask, x, np.nan))
    assert rmse_missing(x, imputed, mask) == pytest.approx(mean_rmse, abs=6e-4)


def test_offset_moves_the_cut_off():
    x = standardise(load_dataset("banknote").to_numpy())
    rates = [1 - paper_mnar(x, offset)[:, :2].mean() for offset in (-0.5, 0.0, 0.5, 1.0)]
    assert rates == sorted(rates, reverse=True)


def test_mcar_rate():
    assert 1 - mcar((2000, 10), 0.3, seed=1).mean() == pytest.approx(0.3, abs=0.01)
    with pytest.raises(ValueError, match="rate"):
        mcar((3, 3), 1.5)


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="unknown data set 'iris'"):
        load_dataset("iris")


@pytest.mark.parametrize("name", ["mice", "knn"])
def test_baselines_keep_observed_values_and_beat_mean_imputation(name):
    # banknote's features are strongly correlated: a working MICE or KNN is far better
    # than the column means there (1.07 and 1.19 against 1.42 on these 400 rows)
    x = standardise(load_dataset("banknote").to_numpy())[:400]
    mask = paper_mnar(x)
    imputed = impute_baseline(name, np.where(mask, x, np.nan))
    assert np.array_equal(imputed[mask], x[mask]) and np.isfinite(imputed).all()
    mean_rmse = rmse_missing(x, impute_baseline("mean", np.where(mask, x, np.nan)), mask)
    assert mean_rmse == pytest.approx(1.418, abs=1e-3)
    assert rmse_missing(x, imputed, mask) < 0.9 * mean_rmse


def test_runner_writes_results_and_resumes(tmp_path, capsys):
    args = ["--datasets", "banknote", "--models", "mean,notmiwae:selfmasking", "--seeds", "2",
            "--iterations", "20", "--impute-samples", "20", "--jobs", "1", "--out", str(tmp_path)]
    assert uci.main(args) == 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 4
    # The two seeds of the trained model ran as two replicas of one program.
    assert set(runs.loc[runs["model"] == "notmiwae:selfmasking", "replicas"]) == {2}
    assert {"dataset", "model", "seed", "iterations", "rmse", "train_seconds",
            "mask_accuracy", "compiled"} <= set(runs)
    trained = runs[runs["model"] == "notmiwae:selfmasking"].sort_values("seed")
    # 20 iterations: "auto" leaves the step eager (it compiles from 5,000 on)
    assert not trained["compiled"].any()
    # The kept group reloads without training and gives each run's row again.
    specs = [RunSpec("banknote", "notmiwae:selfmasking", s, 20, 20) for s in (0, 1)]
    result, xt, mt = train_group(specs, snapshots=tmp_path / "trained")
    x, mask = prepare("banknote")
    for r, row in enumerate(trained.itertuples()):
        assert row.mask_accuracy == pytest.approx(mask_accuracy(result.replica(r), x, mask))
        assert row.mask_accuracy_incomplete == pytest.approx(
            mask_accuracy(result.replica(r), x, mask, incomplete_only=True))
        again = impute(result.replica(r), xt, mt, 20, seed=r).double().numpy()
        assert row.rmse == pytest.approx(rmse_missing(x, again, mask), rel=1e-9)
    assert runs.loc[runs["model"] == "mean", "mask_accuracy"].isna().all()
    assert (tmp_path / "table.png").stat().st_size > 0
    assert not (tmp_path / "snapshots").exists()  # moved once the rows are kept
    kept = torch.load(
        tmp_path / "trained" / "banknote_notmiwae_selfmasking_seeds0-1_it20_offset0.pt",
        weights_only=True)
    assert kept["iteration"] == 20  # the trained group's final state
    table = (tmp_path / "table.md").read_text()
    assert "| notmiwae:selfmasking |" in table and "| mean | 1.73 ± 0.00 (n=2)" in table
    capsys.readouterr()
    assert uci.main(args) == 0
    assert "4 runs already" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 4
    # Settings that runs.csv does not record cannot change within a folder.
    with pytest.raises(SystemExit, match="init 'torch' -> 'glorot'.*use another --out"):
        uci.main(args + ["--init", "glorot"])
    assert "glorot" not in (tmp_path / "commands.txt").read_text()  # refused: not logged
    assert "batch=16, K=20, init=torch" in (tmp_path / "table.md").read_text()


def test_folder_settings(tmp_path):
    earlier = {"a": 1, "b": 2}
    check_settings(tmp_path, {"a": 5, "b": 2}, earlier)  # no runs yet: anything goes
    check_settings(tmp_path, {"a": 1, "b": 2}, earlier)  # ...and is not held against later
    (tmp_path / "runs.csv").write_text("x\n1\n")
    check_settings(tmp_path, {"a": 1, "b": 2}, earlier)
    with pytest.raises(SystemExit, match="other settings \\(b 2 -> 3\\)"):
        check_settings(tmp_path, {"a": 1, "b": 3}, earlier)
    (tmp_path / "settings.json").unlink()  # runs from before settings were kept
    with pytest.raises(SystemExit, match="a 1 -> 4"):
        check_settings(tmp_path, {"a": 4, "b": 2}, earlier)
    (tmp_path / "settings.json").write_text("[1,")
    with pytest.raises(SystemExit, match="settings.json: not a JSON object"):
        check_settings(tmp_path, {"a": 1, "b": 2}, earlier)


def test_rows_with_a_new_column_rewrite_the_file_whole(tmp_path):
    path = tmp_path / "runs.csv"
    append_rows(path, [{"a": 1, "b": 2}])
    append_rows(path, [{"b": 4, "a": 3}])  # the file's column order, not the row's
    assert path.read_text() == "a,b\n1,2\n3,4\n"
    append_rows(path, [{"a": 5, "c": 6, "b": 7}])
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame.fillna(-1).to_numpy().tolist() == [[1, 2, -1], [3, 4, -1], [5, 7, 6]]


def test_mask_accuracy_thresholds_the_learned_logits_at_one_half():
    x = np.array([[0.5, -2.0], [2.0, 0.1], [-1.0, 3.0], [0.0, 1.0]])
    mask = np.array([[True, True], [False, True], [True, False], [True, True]])
    program = build_model(config_from_name("notmiwae:selfmasking", n_features=2))
    with torch.no_grad():
        program.missingness.weight.copy_(torch.tensor([1.0, -2.0]))
        program.missingness.bias.copy_(torch.tensor([0.0, 1.0]))
    # logit = -W (x - b): column 0 observed iff x <= 0, column 1 observed iff x >= 1.
    # Row 3 lies on the boundary, logit 0: P = 1/2 counts as observed.
    predicted = np.array([[False, False], [False, False], [True, True], [True, True]])
    assert mask_accuracy(program, x, mask) == np.mean(predicted == mask) == 4 / 8
    # both columns have a missing entry; with column 1 complete only column 0 counts
    assert mask_accuracy(program, x, mask, incomplete_only=True) == 4 / 8
    complete_1 = mask.copy()
    complete_1[2, 1] = True
    assert mask_accuracy(program, x, complete_1, incomplete_only=True) == np.mean(
        predicted[:, 0] == complete_1[:, 0]) == 3 / 4
    assert mask_accuracy(program, x, complete_1) == 5 / 8
    # float64 data reach a float32 dense missing model in its own dtype
    dense = build_model(config_from_name("notmiwae:linear", n_features=2))
    with torch.no_grad():
        expected = (dense.missingness(torch.tensor(x, dtype=torch.float32)) >= 0).numpy()
    assert mask_accuracy(dense, x, mask) == np.mean(expected == mask)
    for name in ("miwae", "masked-notmiwae:selfmasking"):  # no mask model, or one with z_mask
        assert np.isnan(mask_accuracy(build_model(config_from_name(name, n_features=2)),
                                      x, mask))


def test_runner_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        uci.parse_args(["--models", "notmiwae:nope", "--out", "x"])
    assert "unknown missing 'nope'" in capsys.readouterr().err


def test_replica_groups_are_consecutive_seeds_of_one_configuration():
    specs = [RunSpec("red", "miwae", s) for s in (0, 1, 2, 4)] + \
        [RunSpec("red", "mean", s) for s in (0, 1)] + [RunSpec("red", "ppca", 5)]
    groups = group_replicas(specs, max_replicas=2)
    assert [[s.seed for s in g] for g in groups] == [[0, 1], [2], [4], [0], [1], [5]]


def test_a_stopped_group_resumes_from_its_snapshot(tmp_path, monkeypatch):
    specs = [RunSpec("banknote", "notmiwae:linear", s, iterations=12, impute_samples=10)
             for s in (0, 1)]
    first = run_group(specs, snapshots=tmp_path)
    path = snapshot_path(tmp_path, specs)
    assert path.name == "banknote_notmiwae_linear_seeds0-1_it12_offset0.pt"
    assert torch.load(path, weights_only=True)["iteration"] == 12

    def no_step(*args):
        def step(*batch):
            raise AssertionError("a group resumed at its end trained again")
        return step
    monkeypatch.setattr(training, "_iw_step", no_step)
    again = run_group(specs, snapshots=tmp_path)
    assert [r["rmse"] for r in again] == [r["rmse"] for r in first]


def test_parallel_jobs_give_the_same_rows(tmp_path):
    common = ["--datasets", "banknote", "--models", "miwae,notmiwae:linear", "--seeds", "1",
              "--iterations", "15", "--impute-samples", "10"]
    uci.main(common + ["--jobs", "1", "--out", str(tmp_path / "a")])
    uci.main(common + ["--jobs", "2", "--out", str(tmp_path / "b")])
    a = pd.read_csv(tmp_path / "a" / "runs.csv").sort_values("model").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "b" / "runs.csv").sort_values("model").reset_index(drop=True)
    assert np.allclose(a["rmse"], b["rmse"], atol=1e-5)
    assert not (tmp_path / "b" / "snapshots").exists()


def test_workers_are_spawned_never_forked():
    assert device.start_method("cuda") == device.start_method("cpu") == "spawn"


def test_a_bad_device_is_named():
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        device.default_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="PyTorch sees no GPU"):
            device.default_device("cuda")


def test_pool_workers_run_one_pytorch_thread_each():
    with device.process_pool(1, "cpu") as pool:
        assert pool.submit(torch.get_num_threads).result() == 1


def test_jobs_run_here_take_one_pytorch_thread_too_and_give_it_back():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = list(device.as_finished(lambda job: torch.get_num_threads(), [("a",), ("b",)],
                                       workers=1))
        assert [threads for _, threads in seen] == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("module", [f"notmiwae.experiments.{name}" for name in (
    "uci", "bench", "export", "masked", "supervised", "compare", "beyond", "best_bound")]
    + ["notmiwae.inference.cli"])
def test_command_line_entry_points_run(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert "usage:" in out.stdout


@pytest.mark.parametrize("module", ["uci", "masked", "supervised", "bench"])
def test_experiment_counts_must_be_positive(module, capsys, tmp_path):
    main = importlib.import_module(f"notmiwae.experiments.{module}").main
    with pytest.raises(SystemExit) as exit_info:
        main(["--iterations", "0"] + ([] if module == "bench" else ["--out", str(tmp_path)]))
    assert exit_info.value.code == 2
    assert "--iterations: must be at least 1, got 0" in capsys.readouterr().err


def test_signed_error_and_cut_off_side_by_hand():
    x = np.array([[1.0, 0.5, 2.0], [2.0, -1.0, 0.3], [0.2, 0.1, 1.5]])
    mask = np.array([[False, True, False], [False, True, True], [True, True, False]])
    x_imp = np.where(mask, x, np.array([[0.5, 9.0, 2.5], [-0.1, 9.0, 9.0], [9.0, 9.0, 2.0]]))
    assert np.allclose(signed_error_missing(x, x_imp, mask)[[0, 2]],
                       [((0.5 - 1.0) + (-0.1 - 2.0)) / 2, ((2.5 - 2.0) + (2.0 - 1.5)) / 2])
    assert np.isnan(signed_error_missing(x, x_imp, mask)[1])  # nothing missing there
    row, columns = imputation_bias.describe_run(RunSpec("red", "m", 3), x, x_imp, mask)
    assert row["signed_error"] == pytest.approx((-0.5 - 2.1 + 0.5 + 0.5) / 4)
    assert row["mean_imputed"] == pytest.approx((0.5 - 0.1 + 2.5 + 2.0) / 4)
    assert row["share_at_or_below_cutoff"] == 0.25  # -0.1 <= 0, the cut-off at offset 0
    assert [(c["column"], c["missing"]) for c in columns] == [(0, 2), (2, 2)]
    assert (columns[0]["mean_true"], columns[0]["mean_imputed"]) == pytest.approx((1.5, 0.2))
    assert (columns[1]["mean_imputed"], columns[1]["observed_min"]) == pytest.approx((2.25, 0.3))


def test_imputation_bias_reproduces_the_runner_and_keeps_the_trained_groups(tmp_path,
                                                                           monkeypatch):
    common = ["--datasets", "banknote", "--models", "notmiwae:linear", "--seeds", "2",
              "--iterations", "12", "--impute-samples", "10", "--jobs", "1"]
    uci.main(common + ["--out", str(tmp_path / "uci")])
    bias = common + ["--reference", str(tmp_path / "uci" / "runs.csv"),
                     "--out", str(tmp_path / "bias")]
    imputation_bias.main(bias)
    ours = pd.read_csv(tmp_path / "bias" / "runs.csv")
    theirs = pd.read_csv(tmp_path / "uci" / "runs.csv")
    assert ours["rmse"].tolist() == theirs["rmse"].tolist()
    assert "| 0 (2 runs) |" in (tmp_path / "bias" / "summary.md").read_text()
    assert (tmp_path / "bias" / "trained").is_dir()

    def no_step(*args):
        def step(*batch):
            raise AssertionError("a kept group trained again")
        return step
    monkeypatch.setattr(training, "_iw_step", no_step)
    (tmp_path / "bias" / "runs.csv").unlink()  # forget the rows, keep the trained groups
    imputation_bias.main(bias)
    assert pd.read_csv(tmp_path / "bias" / "runs.csv")["rmse"].tolist() == ours["rmse"].tolist()


def test_imputation_bias_groups_only_consecutive_seeds(tmp_path):
    # Seed 1 already described: seeds 0 and 2 must train apart (replica r is seed first + r).
    args = ["--datasets", "banknote", "--models", "notmiwae:linear", "--seeds", "3",
            "--iterations", "12", "--impute-samples", "10", "--jobs", "1"]
    imputation_bias.main(args + ["--out", str(tmp_path / "all")])
    every = pd.read_csv(tmp_path / "all" / "runs.csv")
    (tmp_path / "part").mkdir()
    every[every["seed"] == 1].to_csv(tmp_path / "part" / "runs.csv", index=False)
    (tmp_path / "part" / "settings.json").write_text(
        (tmp_path / "all" / "settings.json").read_text())
    imputation_bias.main(args + ["--out", str(tmp_path / "part")])
    part = pd.read_csv(tmp_path / "part" / "runs.csv").sort_values("seed")
    assert part["seed"].tolist() == [0, 1, 2]
    # trained alone or as replicas: equal up to rounding in the batched arithmetic
    assert np.allclose(part["rmse"], every.sort_values("seed")["rmse"], rtol=1e-6, atol=0)


def test_imputation_bias_refuses_unknown_names_and_baselines(capsys):
    for models, said in (("notmiwae:nope", "unknown missing 'nope'"),
                         ("mean", "'mean' is a baseline")):
        with pytest.raises(SystemExit):
            imputation_bias.main(["--models", models, "--out", "x"])
        assert said in capsys.readouterr().err


def test_export_writes_the_mnar_csv_and_the_truth(tmp_path):
    """A real run of the export command: empty cells exactly where paper_mnar hides."""
    from notmiwae.experiments import export

    out, truth = tmp_path / "mnar.csv", tmp_path / "complete.csv"
    assert export.main(["--dataset", "yeast", "--offset", "0.5", "--out", str(out),
                        "--truth", str(truth)]) == 0
    data = load_dataset("yeast")
    holey, complete = pd.read_csv(out), pd.read_csv(truth)
    assert list(holey.columns) == list(data.columns)
    np.testing.assert_allclose(complete.to_numpy(), data.to_numpy())
    expected = paper_mnar(data.to_numpy(), 0.5)
    np.testing.assert_array_equal(holey.notna().to_numpy(), expected)
    np.testing.assert_allclose(holey.to_numpy()[expected], data.to_numpy()[expected])
    assert export.main(["--dataset", "yeast", "--out", str(out)]) == 0  # no truth asked
    np.testing.assert_array_equal(pd.read_csv(out).notna().to_numpy(),
                                  paper_mnar(data.to_numpy()))


def test_benchmark_runs_and_reports_every_timing(capsys, monkeypatch):
    """A real (tiny) run of the benchmark, JSON and table, on red wine's first 64 rows."""
    import json

    from notmiwae.experiments import bench

    red_wine = bench.red_wine
    monkeypatch.setattr(bench, "red_wine", lambda device: [t[:64] for t in red_wine(device)])
    args = ["--iterations", "2", "--rounds", "1", "--replicas", "1,2",
            "--impute-samples", "10", "--device", "cpu"]
    assert bench.main(args + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("pyro_ms_r1", "torch_ms_r1", "pyro_ms_r2", "torch_ms_r2",
                "impute_seconds_red_L10", "decoder_floor_seconds_red_L10",
                "compiled_impute_seconds_red_L10", "impute_compile_seconds",
                "decoder_large_blocks_seconds_red_L10"):
        assert result[key] > 0, key
    assert result["ratio_r2"] == pytest.approx(result["pyro_ms_r2"] / result["torch_ms_r2"])
    # one round: the medians are that round's times, and the ratio theirs
    assert result["impute_ratio"] == pytest.approx(
        result["impute_seconds_red_L10"] / result["decoder_floor_seconds_red_L10"])
    assert result["machine"].startswith(("CPU", "GPU"))
    table = bench.table(result, 10)
    assert "| 2 | " in table and "| red wine, L = 10 | seconds |" in table
    assert f"| ratio (median of the rounds' ratios) | {result['impute_ratio']:.2f} |" in table
    assert result["compiled_impute_ratio"] == pytest.approx(
        result["compiled_impute_seconds_red_L10"] / result["decoder_floor_seconds_red_L10"])
    assert f"| ratio, compiled (median of the rounds' ratios) | " \
        f"{result['compiled_impute_ratio']:.2f} |" in table


def test_benchmark_imputation_ratio_is_the_median_of_paired_rounds(monkeypatch):
    """Eager and compiled imputation and the decoder are timed in turn; round 0 warms up
    and is dropped."""
    from notmiwae.experiments import bench

    imputations = iter([9.0, 7.0, 2.0, 1.0, 3.0, 2.5, 8.0, 4.0])  # eager, compiled in turn
    decoders = iter([1.0, 1.0, 2.0, 2.0])
    seen = []
    monkeypatch.setattr(bench, "imputation_seconds",
                        lambda *a: seen.append(a[5:]) or next(imputations))
    monkeypatch.setattr(bench, "decoder_seconds", lambda *a: next(decoders))
    x = torch.zeros(4, 3)
    times = bench.imputation_rounds(None, x, x > 0, 10, 3, "cpu")
    assert times == {"eager": [2.0, 3.0, 8.0], "compiled": [1.0, 2.5, 4.0],
                     "decoder": [1.0, 2.0, 2.0]}
    assert seen == [(), (True,)] * 4
    full, floor = times["eager"], times["decoder"]
    # ratios 2, 1.5 and 4: their median 2 (the ratio of the medians would be 3 / 2)
    assert bench.median_ratio(full, floor) == 2.0


def test_the_paper_table_marks_cells_beyond_two_combined_standard_errors(tmp_path):
    from notmiwae.experiments import paper

    # banknote MIWAE, the paper 1.19 ± 0.01: seeds at 1.20 ± 0.01 agree (gap 0.01),
    # seeds at 1.30 do not (0.11 > 2 sqrt(0.01^2 + 0.01^2) + 0.02 = 0.048).
    near = [1.19, 1.20, 1.21, 1.20, 1.20]
    runs = pd.DataFrame({"dataset": "banknote", "model": "miwae", "seed": range(5),
                         "rmse": near, "mask_accuracy": np.nan})
    far = runs.assign(dataset="concrete", rmse=[1.30] * 5)
    cells = paper.compare(pd.concat([runs, far]))
    got = cells.set_index(["model", "dataset"])
    assert got.loc[("miwae", "banknote"), "differs"] == False  # noqa: E712
    assert got.loc[("miwae", "concrete"), "differs"] == True  # noqa: E712
    assert np.isnan(got.loc[("mean", "red"), "mean"]) and len(cells) == 66
    assert paper.main(["--runs", str(_csv(pd.concat([runs, far]), tmp_path)),
                       "--out", str(tmp_path)]) == 0
    text = (tmp_path / "paper_table.md").read_text()
    assert "1 of the 2 cells with runs agree" in text and "**1.30 ± 0.00 (n=5)**" in text
    assert "64 of the 66 cells have no runs yet" in text
    assert (tmp_path / "paper_table.png").stat().st_size > 0
    every = paper.paper_cells().assign(mean=1.0, se=0.0, n=5, differs=False)
    assert "every one of the 66 cells has runs" in paper.markdown(every)


def test_mask_accuracy_page_shows_both_accuracies_beside_table_a1(tmp_path):
    from notmiwae.experiments import paper

    model = "notmiwae:selfmasking_known"
    runs = pd.DataFrame({"dataset": "yeast", "model": model, "seed": range(2),
                         "rmse": 1.4, "mask_accuracy": [0.90, 0.92],
                         "mask_accuracy_incomplete": [0.80, 0.84]})
    older = runs.assign(dataset="breast", mask_accuracy_incomplete=np.nan)
    assert paper.main(["--runs", str(_csv(pd.concat([runs, older]), tmp_path)),
                       "--out", str(tmp_path)]) == 0
    text = (tmp_path / "mask_accuracy.md").read_text()
    every, incomplete = text.split("Over the entries of the columns with a missing value")
    row = next(line for line in every.splitlines() if line.startswith("| not-MIWAE self-m"
                                                                      "asking known"))
    assert "0.910 ± 0.010 (n=2) / 0.78" in row and "0.910 ± 0.010 (n=2) / 0.98" in row
    row = next(line for line in incomplete.splitlines() if "self-masking known" in line)
    assert "0.820 ± 0.020 (n=2) / 0.78" in row and "- / 0.98" in row


def _csv(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "runs.csv"
    frame.to_csv(path, index=False)
    return path


def test_offsets_figure_from_runs_of_several_cut_offs(tmp_path, capsys):
    """Appendix E: runs at two cut-offs in one folder; the renderer averages seeds per
    offset, and a higher cut-off leaves fewer values missing."""
    from notmiwae.experiments import offsets, paper

    for offset in ("0", "0.5"):
        assert uci.main(["--datasets", "banknote,yeast", "--models", "mean", "--seeds", "2",
                         "--offset", offset, "--jobs", "1", "--out", str(tmp_path)]) == 0
    assert offsets.main(["--runs", str(tmp_path / "runs.csv"), "--out", str(tmp_path)]) == 0
    table = offsets.summary(pd.read_csv(tmp_path / "runs.csv"))
    assert len(table) == 4 and (table["n"] == 2).all()
    for _, rows in table.groupby("dataset"):
        rates = rows.set_index("offset")["missing_rate"]
        assert rates[0.5] < rates[0.0]
    # mean imputation at the paper's cut-off is the paper's value; the paper's table
    # leaves the other offset out
    at_zero = table[(table["dataset"] == "banknote") & (table["offset"] == 0)]
    assert float(at_zero["rmse"].iloc[0]) == pytest.approx(1.73, abs=0.005)
    cells = paper.compare(pd.read_csv(tmp_path / "runs.csv"))
    assert int(cells.loc[(cells["model"] == "mean") & (cells["dataset"] == "banknote"),
                         "n"].iloc[0]) == 2
    assert (tmp_path / "offsets.png").stat().st_size > 0
    assert "| banknote | mean | 0.500 |" in (tmp_path / "offsets.md").read_text()
    # offset 0 from Table 1's grid, the others from a folder of their own; --models picks
    grid, moved = tmp_path / "grid", tmp_path / "moved"
    for folder, offset, models in ((grid, "0", "mean,mice"), (moved, "0.5", "mean")):
        assert uci.main(["--datasets", "banknote", "--models", models, "--seeds", "1",
                         "--offset", offset, "--jobs", "1", "--out", str(folder)]) == 0
    both = f"{grid / 'runs.csv'},{moved / 'runs.csv'}"
    assert offsets.main(["--runs", both, "--out", str(moved)]) == 0
    text = (moved / "offsets.md").read_text()
    assert "| banknote | mean | 0.000 |" in text and "| banknote | mean | 0.500 |" in text
    assert "mice" not in text
    with pytest.raises(SystemExit, match="no runs of the models miwae"):
        offsets.main(["--runs", both, "--models", "miwae", "--out", str(moved)])


def test_each_command_is_logged_once_in_order(tmp_path):
    log_command(tmp_path, "notmiwae.experiments.uci", ["--seeds", "5", "--out", "x"])
    log_command(tmp_path, "notmiwae.experiments.uci", ["--seeds", "2", "--out", "x"])
    log_command(tmp_path, "notmiwae.experiments.uci", ["--seeds", "5", "--out", "x"])
    assert (tmp_path / "commands.txt").read_text().splitlines() == [
        "python -m notmiwae.experiments.uci --seeds 5 --out x",
        "python -m notmiwae.experiments.uci --seeds 2 --out x",
    ]
