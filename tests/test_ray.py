"""--engine ray: grids as Ray tasks (same rows as the process pool, also when a worker is
killed midway) and tables imputed with Ray Data, on a local Ray of 2 CPUs."""

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from notmiwae.experiments import uci
from notmiwae.inference import cli, ray_engine

ray = pytest.importorskip("ray")

GRID = ["--datasets", "banknote", "--models", "miwae,notmiwae:linear,mean", "--seeds", "2",
        "--iterations", "100", "--impute-samples", "10", "--jobs", "2"]
# A group long enough to be killed between two of its snapshots (eager: no compile time).
LONG = ["--datasets", "banknote", "--models", "notmiwae:linear", "--seeds", "2",
        "--iterations", "600", "--impute-samples", "10", "--jobs", "2", "--no-compile",
        "--snapshot-every", "50"]
TIMES = ["train_seconds", "impute_seconds", "compile_seconds"]  # may differ, and only they


def runs(folder: Path, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """A grid's runs.csv without its timings (and ``drop``), in a fixed order."""
    frame = pd.read_csv(folder / "runs.csv").drop(columns=TIMES + list(drop))
    return frame.sort_values(["model", "seed"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The grid on the local process pool (before Ray starts in this process)."""
    out = tmp_path_factory.mktemp("pool")
    uci.main(GRID + ["--out", str(out)])
    return runs(out)


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory) -> pd.DataFrame:
    """The LONG group on the local process pool, not interrupted."""
    out = tmp_path_factory.mktemp("long")
    uci.main(LONG + ["--out", str(out)])
    return runs(out, drop=("resumed_from",))


@pytest.fixture(scope="module")
def local_ray(reference, long_reference):
    """One local Ray with 2 CPUs for the module (CI's machine), shut down after."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def test_a_grid_on_ray_gives_the_rows_of_the_process_pool(reference, local_ray, tmp_path):
    uci.main(GRID + ["--engine", "ray", "--out", str(tmp_path)])
    got = runs(tmp_path)
    pd.testing.assert_frame_equal(got, reference)  # RMSEs and bounds bit for bit
    assert not (tmp_path / "snapshots").exists()


def _descendants(root: int) -> list[int]:
    """Process ids below ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running_task(title: str) -> int | None:
    """The id of one of this test's Ray workers whose process title is ``title``."""
    for pid in _descendants(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()):
                return pid
        except OSError:
            continue
    return None


def kill_a_group_midway(argv: list[str], ready=lambda: True) -> None:
    """Run the grid ``argv`` in a thread; once ``ready()``, SIGKILL the Ray worker of a
    running group; wait for the grid to end."""
    grid = threading.Thread(target=uci.main, args=(argv,))
    grid.start()
    killed = None
    while killed is None and grid.is_alive():
        if ready():
            killed = _running_task("ray::run_group")
        time.sleep(0.05)
    assert killed is not None, "the grid ended before a group could be killed"
    os.kill(killed, signal.SIGKILL)
    grid.join(timeout=600)
    assert not grid.is_alive()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's workers in /proc")
def test_a_killed_worker_is_retried_and_the_grid_ends_complete(reference, local_ray,
                                                               tmp_path):
    kill_a_group_midway(GRID + ["--engine", "ray", "--out", str(tmp_path)])
    got = runs(tmp_path)
    assert not got.duplicated(["model", "seed"]).any()
    pd.testing.assert_frame_equal(got, reference)


def test_the_actor_pool_leaves_a_cpu_for_reading():
    assert ray_engine.actor_pool({"CPU": 2.0}) == ray_engine.ActorPool(1, 1.0, 0.0, 1.0)
    assert ray_engine.actor_pool({"CPU": 1.0}).cpus == 0.5
    assert ray_engine.actor_pool({"CPU": 16.0}).actors == 15
    gpu = ray_engine.actor_pool({"CPU": 8.0, "GPU": 1.0}, gpus_per_actor=0.25)
    assert (gpu.actors, gpu.gpus, gpu.cpus) == (4, 0.25, 1.0)
    with pytest.raises(ValueError, match="has 0 GPU"):
        ray_engine.actor_pool({"CPU": 8.0}, gpus_per_actor=0.5)


def test_ray_data_imputes_a_table_in_row_order(local_ray, trained_run, tmp_path):
    run, data = trained_run
    local, remote = tmp_path / "local.csv", tmp_path / "ray.parquet"
    args = ["impute", str(data), "--run", str(run), "--index-col", "id"]
    assert cli.main(args + ["--out", str(local), "--chunk-rows", "1000"]) == 0
    assert cli.main(args + ["--out", str(remote), "--chunk-rows", "1000",
                            "--engine", "ray"]) == 0
    given, expected, got = pd.read_csv(data), pd.read_csv(local), pd.read_parquet(remote)
    assert list(got.columns) == list(given.columns)
    assert got["id"].tolist() == given["id"].tolist()  # every row, in order
    observed = given.notna().to_numpy()
    assert (got.to_numpy()[observed] == given.to_numpy()[observed]).all()
    features = got.columns[1:]
    assert np.isfinite(got[features].to_numpy()).all()
    missing = ~observed[:, 1:]
    difference = got[features].to_numpy()[missing] - expected[features].to_numpy()[missing]
    spread = expected[features].to_numpy()[missing].std()
    # Other draws (each batch seeds its own) of the same estimate, 20 samples a row:
    assert abs(difference.mean()) < 0.05 * spread
    assert np.abs(difference).mean() < 0.5 * spread


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's workers in /proc")
def test_a_retried_group_resumes_from_its_snapshot(long_reference, local_ray, tmp_path):
    """Killed once a snapshot is saved (the output folder is shared storage here), the
    group's retry starts at that snapshot, not at iteration 0, and ends where a run that
    was never interrupted ends."""
    snapshots = tmp_path / "snapshots"
    kill_a_group_midway(LONG + ["--engine", "ray", "--out", str(tmp_path)],
                        ready=lambda: snapshots.is_dir() and any(snapshots.glob("*.pt")))
    frame = pd.read_csv(tmp_path / "runs.csv")
    assert (frame["resumed_from"] >= 50).all() and (frame["resumed_from"] % 50 == 0).all()
    pd.testing.assert_frame_equal(runs(tmp_path, drop=("resumed_from",)), long_reference)
