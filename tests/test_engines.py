"""The engine options, the progress line and the grid projection (no Ray needed)."""

import argparse

import pandas as pd
import pytest

from notmiwae.experiments import engines, grid_projection


def options(*words: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1)
    engines.add_engine_options(parser)
    return parser.parse_args(list(words))


def square(x: int) -> int:
    return x * x


def test_local_jobs_come_back_with_a_line_each(capsys):
    got = dict(engines.run_jobs(square, [(2,), (3,)], options("--jobs", "1"),
                                label=lambda job: f"job {job[0]}",
                                weight=lambda job: job[0]))
    assert got == {(2,): 4, (3,): 9}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 groups of runs on 1 local process(es)"
    assert lines[1].startswith("[1/2] job 2: ") and lines[1].endswith(" left")
    assert lines[2].startswith("[2/2] job 3: 0 s; elapsed") and lines[2].endswith("all done")


def test_the_estimate_scales_the_time_so_far_by_the_work_left(monkeypatch):
    clock = iter([0.0, 60.0, 600.0])
    monkeypatch.setattr(engines.time, "perf_counter", lambda: next(clock))
    progress = engines.Progress([0.0, 1.0, 3.0])
    assert progress.line("mean", 0.0, 0.1) == "[1/3] mean: 0 s; elapsed 60 s"
    assert progress.line("miwae", 1.0, 500) == ("[2/3] miwae: 8.3 min; elapsed 10.0 min, "
                                                 "about 30.0 min left")


@pytest.mark.parametrize("words, message", [
    (["--address", "auto"], "need --engine ray"),
    (["--gpus-per-group", "0.5"], "need --engine ray"),
])
def test_ray_options_need_the_ray_engine(words, message):
    with pytest.raises(SystemExit, match=message):
        list(engines.run_jobs(square, [(1,)], options(*words)))


def test_cuda_on_ray_needs_a_gpu_share():
    with pytest.raises(SystemExit, match="needs --gpus-per-group"):
        engines.check_engine(options("--engine", "ray"), "cuda")
    engines.check_engine(options("--engine", "ray", "--gpus-per-group", "0.25"), "cuda")


def test_engine_options_pass_on_to_another_runner():
    args = options("--engine", "ray", "--address", "auto", "--gpus-per-group", "0.5")
    assert engines.engine_argv(args) == ["--engine", "ray", "--gpus-per-group", "0.5",
                                         "--address", "auto"]


def test_projection_places_groups_longest_first():
    assert grid_projection.makespan([5, 4, 3, 3, 3], 2) == 10
    assert grid_projection.makespan([5, 4, 3], 1) == 12
    runs = pd.DataFrame({"dataset": ["a", "a", "a"], "model": ["miwae", "miwae", "mean"],
                         "train_seconds": [1.0, 1.0, 0.5], "impute_seconds": [0.5, 0.5, 0.0],
                         "iterations": [100, 100, 0], "impute_samples": [10, 10, 0]})
    seconds = grid_projection.group_seconds(runs, iterations=1000, samples=100)
    assert seconds.to_dict() == {("a", "miwae"): 2.0 * 10 + 1.0 * 10}
