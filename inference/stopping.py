"""Training that must stop early: a bound that is no longer finite, or Ctrl-C.

Both stop at the end of a whole step, so a snapshot saved then is a state an
uninterrupted run also passes through, and resuming from it gives the same parameters.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ADVICE = ("try a smaller learning rate (learning_rate), another seed, init='glorot', or "
          "look for extreme values in the data")


class TrainingDiverged(FloatingPointError):
    """The bound became NaN or infinite; the parameters after that step are unusable."""

    def __init__(self, iteration: int, value: float, snapshot: str | Path | None) -> None:
        self.iteration, self.value, self.snapshot = iteration, value, snapshot
        kept = ""
        if snapshot is not None and Path(snapshot).exists():
            kept = f"; the last good snapshot is kept in {snapshot}"
        super().__init__(f"training stopped: the bound is {value} at iteration {iteration}"
                         f"{kept}; {ADVICE}")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``snapshot`` (when given) holds the state to resume from."""

    def __init__(self, iteration: int, snapshot: str | Path | None) -> None:
        self.iteration, self.snapshot = iteration, snapshot
        saved = (f"; saved a snapshot in {snapshot}: run the same command again to resume"
                 if snapshot is not None else "")
        super().__init__(f"training interrupted after iteration {iteration}{saved}")


def check_bound(bound: np.ndarray, iteration: int, snapshot: str | Path | None) -> None:
    """Raise :class:`TrainingDiverged` unless every entry of ``bound`` is finite."""
    bound = np.asarray(bound)
    if not np.isfinite(bound).all():
        raise TrainingDiverged(iteration, float(bound[~np.isfinite(bound)].flat[0]), snapshot)


class InterruptFlag:
    """Set by the first Ctrl-C; a second one interrupts at once."""

    requested: bool = False


@contextmanager
def deferred_interrupt() -> Iterator[InterruptFlag]:
    """Inside, the first Ctrl-C (SIGINT) only sets ``flag.requested``, for the loop to stop
    after its current step; the previous handler is back for a second Ctrl-C and after.
    Outside the main thread, where handlers cannot be set, Ctrl-C acts as usual."""
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield flag
        return
    if previous is None:  # set outside Python: restore Python's own
        previous = signal.default_int_handler

    def handler(signum, frame):
        flag.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
