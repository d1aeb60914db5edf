"""Where a runner's groups of runs execute, and the line printed as each one finishes.

Two engines, chosen with ``--engine``:

- ``local`` (the default): a pool of ``--jobs`` processes on this machine, one PyTorch
  thread each (``notmiwae.inference.device.as_finished``);
- ``ray``: one Ray task per group (``notmiwae.inference.ray_engine``), declaring one CPU
  or, with ``--gpus-per-group F``, a fraction F of a GPU, so that 1/F groups share a
  device. Without ``--address`` Ray starts on this machine with ``--jobs`` CPUs;
  ``--address auto`` (or ``ray://HOST:10001``) joins a running cluster. A task whose
  worker dies is run again by Ray and resumes from the group's snapshot.

Either way the results come back to this process, which alone writes the output files,
and a line per finished group gives the time it took, the time so far and an estimate of
the rest.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Iterator, Sequence

from notmiwae.inference.cli import positive_int
from notmiwae.inference.device import as_finished

ENGINES = ("local", "ray")


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0, else a message naming the value."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def add_engine_options(parser: argparse.ArgumentParser, training: bool = False) -> None:
    """--engine, --address and --gpus-per-group (and, for runners that train groups of
    runs, ``training``, --compile and --snapshot-every), shared by the runners: how the
    groups run, not what they compute."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: a process pool on this machine (--jobs processes); "
                             "ray: one Ray task per group of runs (needs the 'ray' extra)")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: a running Ray cluster to join ('auto', or "
                             "ray://HOST:10001); default: start Ray here with --jobs CPUs")
    parser.add_argument("--gpus-per-group", type=non_negative_float, default=0.0,
                        metavar="F",
                        help="with --engine ray: the share of a GPU each group asks for "
                             "(0.25: four groups per device); default 0, CPU only")
    if not training:
        return
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="train with the compiled step (notmiwae.inference.compiled; "
                             "the same bound and gradients as the eager step, faster after "
                             "10 to 90 s of compiling per group); --no-compile: the eager "
                             "Pyro step; default: compiled from 5,000 iterations on")
    parser.add_argument("--snapshot-every", type=positive_int, default=5000, metavar="N",
                        help="save a training group's state every N iterations in "
                             "OUT/snapshots, so that a stopped or killed group resumes "
                             "there (default 5,000)")


def compile_setting(args: argparse.Namespace) -> bool | str:
    """--compile / --no-compile, or "auto" (``TrainConfig.compile``'s) when neither."""
    return "auto" if args.compile is None else args.compile


def engine_argv(args: argparse.Namespace) -> list[str]:
    """The engine options of ``args`` as command-line words, for a runner that calls another."""
    words = ["--engine", args.engine, "--gpus-per-group", str(args.gpus_per_group)]
    if hasattr(args, "compile"):
        if args.compile is not None:
            words.append("--compile" if args.compile else "--no-compile")
        words += ["--snapshot-every", str(args.snapshot_every)]
    return words + (["--address", args.address] if args.address else [])


def check_engine(args: argparse.Namespace, device: str | None = None) -> None:
    """Refuse Ray-only options without --engine ray, and CUDA without a GPU share (Ray
    hides the GPUs from a task that asks for none)."""
    if args.engine != "ray" and (args.address or args.gpus_per_group):
        raise SystemExit("--address and --gpus-per-group need --engine ray")
    if (args.engine == "ray" and device is not None and "cuda" in str(device)
            and not args.gpus_per_group):
        raise SystemExit("--device cuda with --engine ray needs --gpus-per-group "
                         "(the share of a GPU each group asks Ray for)")


def _timed(function: Callable, *job) -> tuple[float, object]:
    """(seconds, function(*job)): the job's own time, measured where it runs."""
    start = time.perf_counter()
    result = function(*job)
    return time.perf_counter() - start, result


def _duration(seconds: float) -> str:
    """'42 s', '3.5 min' or '2.1 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts finished groups and their share of the work; says how long the rest takes.

    The estimate scales the time so far by the work left over the work done (work: a
    group's weight, e.g. iterations x runs), so it already reflects how many groups run
    at once; it is given once some weighted work is done.
    """

    def __init__(self, weights: Sequence[float]) -> None:
        self.total = float(sum(weights))
        self.groups = len(weights)
        self.done_weight = 0.0
        self.done = 0
        self.start = time.perf_counter()

    def line(self, label: str, weight: float, seconds: float) -> str:
        """The line for a group of ``weight`` that took ``seconds`` and has just finished."""
        self.done += 1
        self.done_weight += weight
        elapsed = time.perf_counter() - self.start
        text = (f"[{self.done}/{self.groups}] {label}: {_duration(seconds)}; "
                f"elapsed {_duration(elapsed)}")
        if self.done == self.groups:
            return text + ", all done"
        if self.done_weight > 0:
            left = elapsed * (self.total - self.done_weight) / self.done_weight
            return text + f", about {_duration(left)} left"
        return text


def run_jobs(function: Callable, jobs: Sequence[tuple], args: argparse.Namespace,
             label: Callable[[tuple], str] = str,
             weight: Callable[[tuple], float] = lambda job: 1.0,
             device: str | None = None) -> Iterator[tuple[tuple, object]]:
    """(job, function(*job)) for each job as it finishes, on ``args.engine`` (see the
    module docstring; ``args`` has the options of :func:`add_engine_options` and
    ``jobs``), printing a progress line for each."""
    jobs = list(jobs)
    check_engine(args, device)
    if not jobs:
        return
    progress = Progress([weight(job) for job in jobs])
    timed = functools.partial(_timed, function)
    if args.engine == "ray":
        from notmiwae.inference import ray_engine

        finished = ray_engine.as_finished(
            timed, jobs, ray_engine.TaskResources(gpus=args.gpus_per_group),
            address=args.address, local_cpus=args.jobs, name=ray_engine.task_name(function))
    else:
        workers = min(args.jobs, len(jobs))
        print(f"{len(jobs)} groups of runs on {workers} local process(es)", flush=True)
        finished = as_finished(timed, jobs, args.jobs, device)
    for job, (seconds, result) in finished:
        yield job, result  # the caller records the rows; then the line
        print(progress.line(label(job), weight(job), seconds), flush=True)
