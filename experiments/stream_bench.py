"""Peak memory of `notmiwae impute` on a large table, streamed in chunks of rows.

    python -m notmiwae.experiments.stream_bench --rows 1000000 --features 10 --out DIR

Writes DIR/big.csv (an identifier column 'id' and F features; in the first half of the
features the values above 0 are missing), trains a small imputer on its first 5,000
rows (200 iterations, L = 10 importance samples; the speed of imputation, not its
quality, is measured) and runs, each in its own process:

- ``whole file in memory``: ``pandas.read_csv`` of the whole file, the first step of
  imputing it at once; the data frame's size (``memory_usage(deep=True)``) and the
  process's peak resident memory;
- ``baseline``: `notmiwae impute` of the first 1,000 rows (the program, PyTorch and the
  imputer: what any run of the command holds);
- ``streamed``: `notmiwae impute DIR/big.csv --chunk-rows N` (and, with ``--parquet``,
  the same file as Parquet, in and out).

Peak resident memory is the operating system's (``wait4``'s ru_maxrss) for each process.
Writes DIR/stream_memory.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from notmiwae.inference.cli import positive_int
from notmiwae.inference.streaming import CHUNK_ROWS

WRITE_ROWS = 100_000  # rows generated and written at a time
# Runs a module as `python -m` does and writes the process's peak resident memory (VmHWM,
# which, unlike wait4's ru_maxrss, does not start from the forking parent's) to a file.
PEAK = """import atexit, runpy, sys
marker, module = sys.argv[1], sys.argv[2]
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            open(marker + '.peak', 'w').write(line.split()[1])
atexit.register(peak)
sys.argv = sys.argv[2:]
runpy.run_module(module, run_name='__main__', alter_sys=True)
"""
READ_WHOLE = ("import sys, pandas as pd; frame = pd.read_csv(sys.argv[1], index_col='id'); "
              "print(int(frame.memory_usage(deep=True).sum()))")

def write_table(path: Path, rows: int, features: int, seed: int = 0) -> None:
    """A CSV of ``rows`` rows, written ``WRITE_ROWS`` at a time (never whole in memory)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(features, features)) / np.sqrt(features)
    names = [f"x{j}" for j in range(features)]
    with open(path, "w", newline="") as handle:
        for start in range(0, rows, WRITE_ROWS):
            n = min(WRITE_ROWS, rows - start)
            x = rng.normal(size=(n, features)) @ mixing
            half = x[:, : features // 2]
            half[half > 0] = np.nan
            frame = pd.DataFrame(x, columns=names)
            frame.insert(0, "id", [f"row{i}" for i in range(start, start + n)])
            frame.to_csv(handle, header=start == 0, index=False, float_format="%.6g")


def train(data: Path, run: Path) -> None:
    """A small imputer on the first 5,000 rows, saved as `notmiwae fit` saves it."""
    from notmiwae import NotMIWAEImputer

    run.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(data, nrows=5000, index_col="id")
    NotMIWAEImputer(iterations=200, num_samples=10, random_state=0).fit(frame).save(
        run / "imputer.pt")


def measure(command: list[str], folder: Path) -> tuple[float, int, str]:
    """(seconds, peak resident memory in bytes, standard output) of ``python -m`` or
    ``python -c`` with ``command``'s words, in a process of its own."""
    marker = folder / "measured"
    start = time.perf_counter()
    if command[0] == "-c":
        module = folder / "read_whole.py"
        module.write_text(command[1])
        command = ["read_whole", *command[2:]]
    done = subprocess.run([sys.executable, "-c", PEAK, str(marker), *command], check=True,
                          stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(folder) + os.pathsep
                               + os.environ.get("PYTHONPATH", "")})
    seconds = time.perf_counter() - start
    peak = int(Path(str(marker) + ".peak").read_text()) * 1024
    return seconds, peak, done.stdout


def impute_command(data: Path, run: Path, out: Path, chunk_rows: int) -> list[str]:
    return ["notmiwae.inference.cli", "impute", str(data), "--run",
            str(run), "--out", str(out), "--index-col", "id", "--threads", "1",
            "--chunk-rows", str(chunk_rows)]


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notmiwae.experiments.stream_bench",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=positive_int, default=1_000_000)
    parser.add_argument("--features", type=positive_int, default=10)
    parser.add_argument("--chunk-rows", type=positive_int, default=CHUNK_ROWS)
    parser.add_argument("--parquet", action="store_true",
                        help="also stream the table as Parquet, in and out")
    parser.add_argument("--out", required=True, help="folder for the files and the report")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    big, small, run = out / "big.csv", out / "small.csv", out / "run"
    write_table(big, args.rows, args.features)
    pd.read_csv(big, nrows=1000).to_csv(small, index=False)
    train(big, run)
    _, whole_peak, size = measure(["-c", READ_WHOLE, str(big)], out)
    _, base_peak, _ = measure(impute_command(small, run, out / "small_out.csv", 1024), out)
    lines = [f"{args.rows:,} rows x {args.features} features + an identifier column; "
             f"chunks of {args.chunk_rows:,} rows; L = 10.", "",
             "| what | seconds | peak resident memory |", "|---|---|---|",
             f"| the file on disk ({mib(big.stat().st_size)}) | | |",
             f"| the whole file as a data frame: {mib(int(size))} (read_csv alone) | | "
             f"{mib(whole_peak)} |",
             f"| `notmiwae impute`, 1,000 rows (baseline) | | {mib(base_peak)} |"]
    runs = [("CSV -> CSV", big, out / "big_out.csv")]
    if args.parquet:
        parquet = out / "big.parquet"
        for i, chunk in enumerate(pd.read_csv(big, chunksize=WRITE_ROWS)):
            chunk.to_parquet(out / f"part{i:04d}.parquet")
        frames = sorted(out.glob("part*.parquet"))
        _concat_parquet(frames, parquet)
        runs.append(("Parquet -> Parquet", parquet, out / "big_out.parquet"))
    for label, source, target in runs:
        seconds, peak, _ = measure(impute_command(source, run, target, args.chunk_rows), out)
        lines.append(f"| `notmiwae impute`, {label}, streamed | {seconds:.0f} | {mib(peak)} "
                     f"(+{mib(peak - base_peak)} over the baseline) |")
        (out / "stream_memory.md").write_text("\n".join(lines) + "\n")  # so far
    print("\n".join(lines))
    return 0


def _concat_parquet(parts: list[Path], target: Path) -> None:
    """One Parquet file from several, a part at a time; the parts are removed."""
    import pyarrow.parquet as pq

    writer = None
    for part in parts:
        table = pq.read_table(part)
        writer = writer or pq.ParquetWriter(target, table.schema)
        writer.write_table(table)
        part.unlink()
    if writer is not None:
        writer.close()


if __name__ == "__main__":
    raise SystemExit(main())
