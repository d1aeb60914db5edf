"""The replica kept by its training bound, from a runs.csv."""

import pandas as pd
import pytest

from notmiwae.experiments import best_bound


def test_the_replica_with_the_highest_bound_is_kept_and_counted(tmp_path, capsys):
    runs = pd.DataFrame({
        "dataset": ["yeast"] * 3 + ["red"] * 3 + ["red"],
        "model": ["a"] * 3 + ["b"] * 3 + ["mean"],
        "offset": [0.0] * 6 + [0.0],
        "seed": [0, 1, 2, 0, 1, 2, 0],
        "final_bound": [-7.29, -7.40, -7.39, -6.0, -5.0, float("nan"), float("nan")],
        "rmse": [0.78, 1.22, 1.21, 1.0, 1.3, 0.5, 1.8],
        "iterations": 10, "impute_samples": 10})
    runs = pd.concat([runs, runs.assign(offset=0.5, final_bound=0.0, rmse=9.0)])
    table = best_bound.best_by_bound(runs).set_index("model")
    assert list(table.index) == ["a", "b"]  # mean has no bound; b keeps two seeds
    assert table.loc["a", "highest bound's RMSE"] == 0.78
    assert table.loc["a", "mean RMSE"] == pytest.approx((0.78 + 1.22 + 1.21) / 3)
    assert table.loc["a", "rank correlation"] == pytest.approx(-1.0)
    assert table.loc["b", "seeds"] == 2 and table.loc["b", "highest bound's RMSE"] == 1.3
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    assert best_bound.main(["--runs", str(path), "--out", str(tmp_path / "b.md")]) == 0
    assert "better than the seeds' mean in 1 of 2 cells" in (tmp_path / "b.md").read_text()
    with pytest.raises(SystemExit):
        best_bound.main(["--runs", str(tmp_path / "none.csv")])


def test_runs_without_bounds_are_refused_by_name(tmp_path):
    baselines = pd.DataFrame({"dataset": ["red"], "model": ["mean"], "offset": [0.0],
                              "seed": [0], "rmse": [1.8]})
    with pytest.raises(SystemExit, match="no final_bound column"):
        best_bound.best_by_bound(baselines)
    one_seed = baselines.assign(final_bound=-3.0, iterations=10, impute_samples=10)
    with pytest.raises(SystemExit, match="no model with two seeds"):
        best_bound.report(best_bound.best_by_bound(one_seed), "runs.csv")
