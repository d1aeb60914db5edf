"""The study of a variant beyond the paper's best row: its choice rule and its verdicts."""

import numpy as np
import pandas as pd
import pytest

from notmiwae.experiments import beyond
from notmiwae.experiments.paper import DATASETS


def runs(stage, variant, rmse_by_set):
    return pd.DataFrame([{"stage": stage, "variant": variant, "dataset": d, "seed": s,
                          "rmse": r} for d, values in rmse_by_set.items()
                         for s, r in enumerate(values)])


def test_the_paper_best_row_per_data_set_is_the_issues():
    best = beyond.paper_best().set_index("dataset")
    assert best["paper_best"].to_dict() == {"banknote": 0.57, "concrete": 1.12, "red": 1.07,
                                            "white": 0.99, "yeast": 0.77, "breast": 0.72}
    assert best.loc["concrete", "paper_row"] == "notmiwae:selfmasking_known"


def test_the_choice_waits_for_every_candidate_on_every_set_then_takes_the_lowest_average():
    first, second = beyond.ROUNDS[1]
    low = {d: [0.5, 0.7] for d in DATASETS}
    high = {**{d: [0.4, 0.4] for d in DATASETS[:-1]}, DATASETS[-1]: [2.0, 2.0]}
    partial = pd.concat([runs("select", first, low),
                         runs("select", second, {d: high[d] for d in DATASETS[:-1]})])
    with pytest.raises(SystemExit, match=rf"\['{second}'\] lack a data set"):
        beyond.chosen(partial)
    done = pd.concat([runs("select", first, low), runs("select", second, high)])
    # averages: 0.6 against (5 * 0.4 + 2.0) / 6 = 0.667
    assert beyond.chosen(done) == first
    assert beyond.chosen(done.assign(rmse=done["rmse"].where(done["variant"] == first, 0.1))
                         ) == second


def test_a_set_is_beaten_only_where_the_whole_interval_lies_below_the_paper():
    variant = beyond.ROUNDS[1][1]
    below = [0.70, 0.71, 0.70, 0.71, 0.70]            # breast, best 0.72: all below
    straddles = [0.50, 0.60, 0.55, 0.65, 0.52]        # banknote, 0.57 within the interval
    rounded = [0.766, 0.767, 0.768, 0.767, 0.767]     # yeast, 0.77: below it, not 0.765
    table = beyond.evaluation(runs("evaluate", variant, {"breast": below, "yeast": rounded,
                                                         "banknote": straddles}), variant)
    table = table.set_index("dataset")
    assert bool(table.loc["breast", "beats"]) and not table.loc["banknote", "beats"]
    # the 95% t-interval by hand: mean 0.704, s = sqrt(0.00003), t_{0.975, 4} = 2.776445
    half = 2.776445 * np.sqrt(0.00003) / np.sqrt(5)
    assert (table.loc["breast", "low"], table.loc["breast", "high"]) == pytest.approx(
        (0.704 - half, 0.704 + half), abs=1e-6)
    assert table.loc["breast", "high"] < 0.72
    assert table.loc["banknote", "low"] < 0.57 < table.loc["banknote", "high"]
    assert 0.765 < table.loc["yeast", "high"] < 0.77 and not table.loc["yeast", "beats"]
    assert table.loc["white", "n"] == 0 and not table.loc["white", "beats"]


def test_the_report_says_the_choice_and_the_count():
    first, second = beyond.ROUNDS[1]
    select = pd.concat([runs("select", first, {d: [1.0, 1.0] for d in DATASETS}),
                        runs("select", second, {d: [0.9, 0.9] for d in DATASETS})])
    text = beyond.report(select)
    assert "mean + 0.5 sd" in text
    assert f"**{second}**" in text and "Evaluation" in text
    evaluate = runs("evaluate", second, {"breast": [0.70, 0.71, 0.70, 0.71, 0.70]})
    text = beyond.report(pd.concat([select, evaluate]))
    assert "Beats the paper's best on 1 of the 1 sets evaluated" in text


def test_select_then_evaluate_resume_and_refuse_out_of_order(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run_group(specs, parts, snapshots, **options):
        calls.append((specs, parts, snapshots))
        bonus = 0.1 if parts else 0.0  # the factor-analysis candidate does better
        return [{"dataset": s.dataset, "model": s.model, "seed": s.seed,
                 "offset": s.offset, "rmse": 1.0 - bonus + 0.01 * s.seed} for s in specs]

    monkeypatch.setattr(beyond, "run_group", fake_run_group)
    out = tmp_path / "beyond"
    base = ["--iterations", "10", "--impute-samples", "10", "--jobs", "1", "--out", str(out)]
    with pytest.raises(SystemExit, match="selection is not finished"):
        beyond.main(["evaluate"] + base)
    assert not (out / "commands.txt").exists()  # a refused command is not logged
    assert beyond.main(["select", "--datasets", "banknote"] + base) == 0
    with pytest.raises(SystemExit, match=r"\['factor-analysis', 'paper'\] lack a data set"):
        beyond.main(["evaluate"] + base)
    assert beyond.main(["select"] + base) == 0
    assert len(calls) == 12 and all(s.offset == 0.5 and len(specs) == 2
                                    for specs, _, _ in calls for s in specs)
    # candidates sharing a model name keep their snapshots apart
    assert {c[2].name for c in calls} == set(beyond.ROUNDS[1])
    assert beyond.main(["select"] + base) == 0 and len(calls) == 12  # resumed: nothing to do
    with pytest.raises(SystemExit, match="select_seeds"):
        beyond.main(["select", "--seeds", "3"] + base)
    assert beyond.main(["evaluate"] + base) == 0
    evaluated = calls[12:]
    assert len(evaluated) == 12  # the choice and the control, six sets each
    assert all(s.offset == 0 and [x.seed for x in specs] == [0, 1, 2, 3, 4]
               for specs, _, _ in evaluated for s in specs)
    text = (out / "README.md").read_text()
    assert "**factor-analysis**" in text
    # 0.92 [0.90, 0.94] for every set, paired -0.100 against the control
    row = next(line for line in text.splitlines() if line.startswith("| breast |"))
    assert "0.920 [0.900, 0.940] (n=5) | 0.72 |" in row and "| no | 1.020 | -0.100" in row
    row = next(line for line in text.splitlines() if line.startswith("| white |"))
    assert "| 0.99 |" in row and "| yes |" in row
    assert "Beats the paper's best on 3 of the 6 sets evaluated" in text  # concrete, red, white


def test_a_later_round_chooses_among_its_own_candidates_in_its_own_folder(tmp_path,
                                                                         monkeypatch):
    calls = []

    def fake_run_group(specs, parts, snapshots, **options):
        calls.append((specs, parts, snapshots))
        bonus = 0.2 if parts.get("decoder") == "gaussian-feature-scale" else 0.0
        return [{"dataset": s.dataset, "model": s.model, "seed": s.seed,
                 "offset": s.offset, "rmse": 1.0 - bonus} for s in specs]

    monkeypatch.setattr(beyond, "run_group", fake_run_group)
    base = ["--iterations", "10", "--impute-samples", "10", "--jobs", "1"]
    first = tmp_path / "round1"
    assert beyond.main(["select", "--datasets", "banknote", "--out", str(first)] + base) == 0
    with pytest.raises(SystemExit, match="round 1 -> 2"):
        beyond.main(["select", "--round", "2", "--out", str(first)] + base)
    out = tmp_path / "round2"
    calls.clear()
    assert beyond.main(["select", "--round", "2", "--out", str(out)] + base) == 0
    assert {c[2].name for c in calls} == set(beyond.ROUNDS[2]) and len(calls) == 18
    assert {c[1].get("decoder") for c in calls} == {None, "gaussian-shared-scale",
                                                    "gaussian-feature-scale"}
    assert beyond.main(["evaluate", "--out", str(out)] + base) == 0  # the folder's round
    evaluated = {c[2].name for c in calls[18:]}
    assert evaluated == {"deep-feature-scale", beyond.CONTROL}
    text = (out / "README.md").read_text()
    assert text.startswith("# A variant beyond the paper's best row: round 2")
    assert "**deep-feature-scale**" in text and "`factor-analysis`" not in text


def test_evaluate_with_no_runs_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="selection is not finished"):
        beyond.main(["evaluate", "--out", str(tmp_path)])


def test_evaluate_reuses_table_1_runs_of_a_candidate_that_replaces_no_part(tmp_path,
                                                                          monkeypatch):
    calls = []

    def fake_run_group(specs, parts, snapshots, **options):
        calls.append((specs, parts))
        bonus = -0.1 if parts else 0.0  # the factor-analysis candidate does worse
        return [{"dataset": s.dataset, "model": s.model, "seed": s.seed,
                 "offset": s.offset, "rmse": 1.0 - bonus} for s in specs]

    monkeypatch.setattr(beyond, "run_group", fake_run_group)
    grid = tmp_path / "uci"
    grid.mkdir()
    model = beyond.CANDIDATES[beyond.CONTROL][0]
    row = {"dataset": "banknote", "model": model, "iterations": 10, "impute_samples": 10,
           "offset": 0.0, "rmse": 0.5}
    pd.DataFrame([{**row, "seed": 4, "rmse": 9.0}]  # replaced by seed 4's later run
                 + [{**row, "seed": s} for s in range(6)]  # seed 5 is not the evaluation's
                 + [{**row, "seed": 0, "offset": 0.5, "rmse": 9.0},
                    {**row, "seed": 3, "impute_samples": 20, "rmse": 9.0},
                    {**row, "seed": 1, "model": "miwae", "rmse": 9.0},
                    {**row, "seed": 2, "dataset": "red", "iterations": 20, "rmse": 9.0}]
                 ).to_csv(grid / "runs.csv", index=False)
    (grid / "settings.json").write_text('{"batch_size": 16, "particles": 20, "init": "torch"}')
    out = tmp_path / "beyond"
    base = ["--iterations", "10", "--impute-samples", "10", "--out", str(out)]
    assert beyond.main(["select"] + base) == 0 and len(calls) == 12
    with pytest.raises(SystemExit, match="cannot reuse its runs: {'init': 'torch'}"):
        beyond.main(["evaluate", "--reuse", str(grid / "runs.csv")] + base)
    (grid / "settings.json").write_text('{"batch_size": 16, "particles": 20, '
                                        '"init": "glorot"}')
    assert beyond.main(["evaluate", "--reuse", str(grid / "runs.csv")] + base) == 0
    trained = calls[12:]
    assert sorted(specs[0].dataset for specs, _ in trained) == sorted(DATASETS[1:])
    saved = pd.read_csv(out / "runs.csv")
    reused = saved[saved["reused_from"].notna()]
    assert sorted(reused["seed"]) == [0, 1, 2, 3, 4]
    assert set(reused["rmse"]) == {0.5} and set(reused["dataset"]) == {"banknote"}
    assert "5 of the evaluation's runs are Table 1's own" in (out / "README.md").read_text()
    with pytest.raises(SystemExit):
        beyond.main(["select", "--reuse", str(grid / "runs.csv")] + base)


def test_a_candidate_with_a_part_replaced_is_trained_and_only_the_control_reused(
        tmp_path, monkeypatch):
    calls = []

    def fake_run_group(specs, parts, snapshots, **options):
        calls.append((specs, parts))
        bonus = 0.1 if parts else 0.0  # the factor-analysis candidate does better
        return [{"dataset": s.dataset, "model": s.model, "seed": s.seed,
                 "offset": s.offset, "rmse": 1.0 - bonus} for s in specs]

    monkeypatch.setattr(beyond, "run_group", fake_run_group)
    grid = tmp_path / "uci"
    grid.mkdir()
    model = beyond.CANDIDATES[beyond.CONTROL][0]  # the variant's model name too
    row = {"dataset": "banknote", "model": model, "iterations": 10, "impute_samples": 10,
           "offset": 0.0, "rmse": 0.5}
    pd.DataFrame([{**row, "seed": s} for s in range(5)]
                 + [{**row, "dataset": "red", "seed": 0, "rmse": float("nan")}]
                 ).to_csv(grid / "runs.csv", index=False)
    out = tmp_path / "beyond"
    base = ["--iterations", "10", "--impute-samples", "10", "--out", str(out)]
    assert beyond.main(["select"] + base) == 0
    with pytest.raises(SystemExit, match="cannot reuse its runs"):  # no settings.json
        beyond.main(["evaluate", "--reuse", str(grid / "runs.csv")] + base)
    (grid / "settings.json").write_text('{"batch_size": 16, "particles": 20, '
                                        '"init": "glorot"}')
    assert beyond.main(["evaluate", "--reuse", str(grid / "runs.csv")] + base) == 0
    trained = calls[12:]
    variant = [v for v in beyond.CANDIDATES if v != beyond.CONTROL][0]
    assert all(parts for specs, parts in trained if specs[0].dataset == "banknote")
    assert len(trained) == 6 + 5  # the variant everywhere; the control but on banknote
    saved = pd.read_csv(out / "runs.csv")
    reused = saved[saved["reused_from"].notna()]
    assert set(reused["variant"]) == {beyond.CONTROL}
    assert set(reused["dataset"]) == {"banknote"}  # red's row has no RMSE: trained again
    assert len(saved[(saved["stage"] == "evaluate") & (saved["variant"] == variant)]) == 30
