"""Peak memory of imputation on a large table (CPU): the rows are imputed in blocks and
the importance samples drawn in chunks, so the peak should not grow with N or L.

    python -m notmiwae.experiments.memory --rows 100000 --features 30 --samples 10000

Prints the resident memory (the process's peak RSS, from the operating system) after
building the data and fitting a few iterations, then every ``--every`` seconds while
imputing (with the share of the N x L row-samples done), and at the end. ``--seconds S``
stops after S seconds of imputation: each block of rows repeats the same work, so the
peak of the first blocks is that of the whole run, but for the final N x D arrays, which
a run with a small L shows.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time

import numpy as np
import torch

from notmiwae.inference import importance
from notmiwae.inference.imputer import NotMIWAEImputer


def peak_mib() -> float:
    """The process's peak resident memory so far, in MiB."""
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def table(rows: int, features: int, seed: int = 0) -> np.ndarray:
    """Correlated data with values above the column mean hidden in half the columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)) @ rng.normal(size=(3, features))
    x += 0.3 * rng.normal(size=x.shape)
    half = features // 2
    x[:, :half] = np.where(x[:, :half] > x[:, :half].mean(0), np.nan, x[:, :half])
    return x


def count_row_samples() -> list[int]:
    """Count the row-samples imputation has drawn (wraps the weights' computation)."""
    done, weights = [0], importance.log_importance_weights

    def counting(program, x, mask, num_samples, *args, **kwargs):
        done[0] += len(x) * num_samples
        return weights(program, x, mask, num_samples, *args, **kwargs)

    importance.log_importance_weights = counting  # what imputation's eager weights call
    return done


def report(done: list[int], total: int, start: float, every: float, limit: float | None,
           ) -> None:
    """Print the peak RSS and progress every ``every`` s; end the process after ``limit``."""
    while True:
        time.sleep(every)
        elapsed = time.perf_counter() - start
        print(f"  {elapsed:5.0f} s: {100 * done[0] / total:5.1f}% of the row-samples, peak "
              f"RSS {peak_mib():.0f} MiB", flush=True)
        if limit is not None and elapsed >= limit:
            print(f"stopped after {elapsed:.0f} s (--seconds)", flush=True)
            os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--samples", type=int, default=10_000, help="L")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between reports")
    parser.add_argument("--seconds", type=float, help="stop imputing after this long")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    x = table(args.rows, args.features)
    imputer = NotMIWAEImputer(iterations=args.iterations, num_samples=args.samples,
                              device="cpu", verbose=False, compile=False).fit(x)  # eager
    before = peak_mib()
    print(f"N={args.rows} D={args.features} L={args.samples} threads="
          f"{torch.get_num_threads()}: data {x.nbytes / 2**20:.0f} MiB, peak RSS after "
          f"fit {before:.0f} MiB", flush=True)
    done = count_row_samples()
    start = time.perf_counter()
    threading.Thread(target=report, daemon=True,
                     args=(done, args.rows * args.samples, start, args.every,
                           args.seconds)).start()
    out = imputer.transform(x)
    seconds = time.perf_counter() - start
    assert np.isfinite(out).all()
    print(f"imputed {int(np.isnan(x).sum())} cells in {seconds:.0f} s; peak RSS "
          f"{peak_mib():.0f} MiB ({peak_mib() - before:+.0f} MiB while imputing)")


if __name__ == "__main__":
    main()
