"""Everything that talks to Ray: groups of experiment runs as Ray tasks, and large tables
imputed with Ray Data. Needs the 'ray' extra (``pip install -c constraints.txt -e ".[ray]"``).

Connecting (:func:`connect`): without an address Ray starts on this machine; with
``auto`` or ``ray://HOST:10001`` the same code runs on an existing cluster, whose nodes
need this package installed and, for resuming, the output folder on shared storage.

Grids (:func:`as_finished`): each job is one Ray task declaring its resources (one CPU,
or a fraction of a GPU so that several share a device). A task whose worker process or
node dies is run again by Ray (``max_retries``); the experiment runners resume a group
from its training snapshot, so the rerun ends with the rows of an uninterrupted one.
Only the driver writes files: results come back to it as each task finishes.

Tables (:func:`impute_table`): Ray Data reads CSV or Parquet, an actor pool imputes
batches (each actor loads the trained imputer once) and the batches stream back in row
order. The pool is sized from the cluster's resources so that reading tasks keep a CPU:
on a 2-CPU machine, two 1-CPU actors would take every CPU and the read could never run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch


def _ray() -> Any:
    """The ray module, or an error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--engine ray needs Ray: pip install -c constraints.txt "
                         "-e \".[ray]\"") from None
    return ray


def connect(address: str | None = None, local_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` ('auto', 'ray://HOST:10001'), or start Ray on this
    machine (with ``local_cpus`` CPUs when given) when None; nothing if already connected."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address is None:
        ray.init(num_cpus=local_cpus, include_dashboard=False)
    else:
        ray.init(address=address)


# -- grids -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskResources:
    """What each task asks Ray for, and how often it is rerun when its worker dies."""

    cpus: float = 1.0
    gpus: float = 0.0
    max_retries: int = 3

    def threads(self) -> int:
        """PyTorch CPU threads for a task: its whole CPUs, at least one."""
        return max(1, int(self.cpus))


def _run_job(function: Callable, job: tuple, threads: int) -> object:
    """Inside a Ray worker: ``function(*job)`` with ``threads`` PyTorch threads."""
    torch.set_num_threads(threads)
    return function(*job)


def task_name(function: Callable) -> str:
    """The name of a function, through any ``functools.partial`` around it."""
    while hasattr(function, "func"):  # functools.partial, possibly nested
        function = function.func
    return getattr(function, "__name__", "job")


def as_finished(function: Callable, jobs: Sequence[tuple], resources: TaskResources,
                address: str | None = None, local_cpus: int | None = None,
                name: str | None = None) -> Iterator[tuple[tuple, object]]:
    """(job, function(*job)) for each job as its Ray task finishes. ``function`` must be
    importable by the workers (a module-level function, or a partial of one). ``name``:
    what Ray calls the tasks, and the title of a worker process running one (ray::NAME);
    default: the function's name."""
    ray = _ray()
    connect(address, local_cpus)
    print(f"{len(jobs)} groups of runs as Ray tasks ({resources.cpus:g} CPU, "
          f"{resources.gpus:g} GPU each) on a cluster with {_resources_text(ray)}",
          flush=True)
    task = ray.remote(_run_job).options(
        num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=resources.max_retries,
        name=name or task_name(function))
    shared = ray.put(function)
    pending = {task.remote(shared, job, resources.threads()): job for job in jobs}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                yield job, ray.get(ref)
    finally:
        for ref in pending:  # the caller stopped early (an error, Ctrl-C)
            ray.cancel(ref)


def _resources_text(ray: Any) -> str:
    resources = ray.cluster_resources()
    return f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU"


# -- tables ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActorPool:
    """How Ray Data imputes: ``actors`` actors of ``cpus`` CPUs and ``gpus`` GPUs each,
    with ``read_cpus`` for each reading task."""

    actors: int
    cpus: float
    gpus: float
    read_cpus: float


def actor_pool(resources: dict[str, float], gpus_per_actor: float = 0.0) -> ActorPool:
    """Size the imputing actors from a cluster's (available) resources, keeping a CPU
    (half of them, on a machine with fewer than two) free for reading tasks."""
    cpus, gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    read_cpus = min(1.0, cpus / 2) or 0.5
    spare = max(cpus - read_cpus, 0.0)
    if gpus_per_actor > 0:
        if gpus < gpus_per_actor:
            raise ValueError(f"--gpus-per-actor {gpus_per_actor:g}: the cluster has "
                             f"{gpus:g} GPU available")
        actors = int(gpus // gpus_per_actor)
        return ActorPool(actors, min(1.0, spare / actors), gpus_per_actor, read_cpus)
    if spare >= 1:
        return ActorPool(int(spare), 1.0, 0.0, read_cpus)
    return ActorPool(1, spare or 0.5, 0.0, read_cpus)


class BatchImputer:
    """Ray Data's callable class: loads the imputer once per actor, imputes each batch."""

    def __init__(self, imputer_file: bytes, index_col: str | None, seed: int,
                 threads: int) -> None:
        from .streaming import imputer_from_bytes

        torch.set_num_threads(threads)
        self.imputer = imputer_from_bytes(imputer_file)
        self.index_col = index_col
        self.seed = seed

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from .streaming import batch_seed, impute_frame

        filled = impute_frame(self.imputer, batch, self.index_col,
                              seed=batch_seed(self.seed, batch))
        return filled.reset_index() if self.index_col is not None else filled


def _read(ray: Any, path: str, features: list[str] | None, read_cpus: float) -> Any:
    """A Ray dataset of the file's rows (feature columns read as float64)."""
    from .streaming import is_parquet

    if is_parquet(path):
        return ray.data.read_parquet(path, num_cpus=read_cpus)
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    types = {name: pa.float64() for name in features or []}
    return ray.data.read_csv(path, num_cpus=read_cpus,
                             convert_options=pa_csv.ConvertOptions(column_types=types))


def impute_table(path: str | Path, imputer_file: bytes, features: list[str] | None,
                 index_col: str | None, seed: int, batch_rows: int,
                 gpus_per_actor: float = 0.0,
                 address: str | None = None) -> Iterator[pd.DataFrame]:
    """The rows of ``path`` (CSV or Parquet), imputed by a Ray Data actor pool in batches
    of ``batch_rows``, in their order, indexed by ``index_col`` when given."""
    ray = _ray()
    connect(address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # write_table prints the rows done
    pool = actor_pool(ray.available_resources(), gpus_per_actor)
    print(f"imputing with {pool.actors} Ray actor(s) of {pool.cpus:g} CPU, {pool.gpus:g} "
          f"GPU; reading with {pool.read_cpus:g} CPU per task", flush=True)
    dataset = _read(ray, str(path), features, pool.read_cpus).map_batches(
        BatchImputer, batch_size=batch_rows, batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=pool.actors),
        num_cpus=pool.cpus, num_gpus=pool.gpus,
        fn_constructor_kwargs={"imputer_file": imputer_file, "index_col": index_col,
                               "seed": seed, "threads": max(1, int(pool.cpus))})
    for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        batch = table.to_pandas()  # NumPy columns, as pandas reads a file
        yield batch.set_index(index_col) if index_col is not None else batch
