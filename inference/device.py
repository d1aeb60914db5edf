"""Where tensors live (the GPU when there is one, the CPU otherwise) and how worker
processes start for them."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (checked: a known name, and CUDA only when PyTorch sees a GPU),
    else ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but PyTorch sees no GPU")
    return chosen


def program_device(program: torch.nn.Module) -> torch.device:
    """The device a program's parameters are on."""
    return next(program.parameters()).device


def start_method(device: str | torch.device | None = None) -> str:
    """How worker processes start: always ``spawn``. A forked child inherits its parent's
    memory but not its threads: CUDA cannot be used in it once the parent has, and a
    parent that has compiled a step (inductor keeps a pool of compile workers) can leave
    a forked child waiting forever on a lock held by a thread it does not have."""
    return "spawn"


def process_pool(workers: int, device: str | torch.device | None = None) -> ProcessPoolExecutor:
    """Worker processes for independent runs on ``device``, one PyTorch thread each (the
    workers share the cores)."""
    context = multiprocessing.get_context(start_method(device))
    return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=torch.set_num_threads, initargs=(1,))


def as_finished(function: Callable, jobs: Sequence[tuple], workers: int,
                device: str | torch.device | None = None) -> Iterator[tuple[tuple, object]]:
    """(job, function(*job)) for each job, as each finishes: in up to ``workers`` processes
    (``process_pool``) when there are several jobs, else one after another here, in one
    PyTorch thread as a worker would be (:func:`one_thread`)."""
    if min(workers, len(jobs)) <= 1:
        for job in jobs:
            with one_thread():
                result = function(*job)
            yield job, result
        return
    with process_pool(min(workers, len(jobs)), device) as pool:
        futures = {pool.submit(function, *job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


@contextmanager
def one_thread() -> Iterator[None]:
    """One PyTorch thread while inside, as in a worker of :func:`process_pool`; the
    number before is restored after.

    A run beside other busy processes must not take two threads: their OpenMP threads
    wait for each other at every operation, spinning while the other is descheduled. On
    2 cores beside two other jobs a two-replica training step took 60 ms with two
    threads and 5 ms with one (``results/threads.md``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero on the CPU while inside (TensorFlow's default too).

    Tiny importance weights and mixture responsibilities produce denormals, which the
    CPU handles tens of times more slowly; PyTorch's default (off) is restored after.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
