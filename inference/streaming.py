"""`notmiwae impute` for tables larger than memory: CSV or Parquet in, CSV or Parquet out,
read, imputed and written in chunks of rows, so memory stays bounded for any file size.

Two engines:

- ``local`` (the default): chunks one after another in this process. The random
  generators are seeded once and carried from chunk to chunk, and chunks hold a whole
  number of the imputation's row blocks, so the output is exactly that of imputing the
  whole file at once (same seed, same draws, same CSV).
- ``ray``: Ray Data reads the file, imputes batches of rows in a pool of actors that each
  load the trained imputer once (``notmiwae.inference.ray_engine``) and streams them back
  here in their order. Each batch seeds its own draws (from the run's seed and the
  batch's rows), so values agree with the local engine's to Monte Carlo error, not bit
  for bit.

Row order and the identifier column (``--index-col``) are kept; without one, the output
has the input's feature columns only, as for a small file. The output is written to
OUT.partial and renamed to OUT when complete.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyro.util
import torch

if TYPE_CHECKING:  # imported when used: `notmiwae --help` stays quick
    from .cli import Run
    from .imputer import NotMIWAEImputer

CHUNK_ROWS = 4_096  # a multiple of the imputation's row blocks (at most 1,024 rows)
ROW_BLOCK = 1024  # chunks are rounded up to a multiple of this
STREAM_ABOVE_BYTES = 64 * 2**20  # larger input files are streamed even without options
PARQUET_SUFFIXES = (".parquet", ".pq")


# -- the command ----------------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser) -> None:
    """The streaming options of `notmiwae impute`."""
    parser.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                        help=f"stream the file in chunks of about N rows (default {CHUNK_ROWS:,}"
                        "; files over 64 MiB, Parquet files and --engine ray always stream)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: chunks in this process; ray: Ray Data (needs the "
                        "'ray' extra), on this machine or the cluster of --address")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: a Ray cluster to join ('auto' or "
                        "ray://HOST:10001); default: start Ray on this machine")
    parser.add_argument("--gpus-per-actor", type=float, default=0.0, metavar="F",
                        help="with --engine ray: the share of a GPU each imputing actor "
                        "asks for (default 0: CPU actors)")


def is_parquet(path: str | Path) -> bool:
    """Whether a file name says Parquet (.parquet, .pq); anything else is read as CSV."""
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def wanted(args: argparse.Namespace) -> bool:
    """Whether `notmiwae impute` streams: Parquet in or out, --engine ray, --chunk-rows, or
    an input file over 64 MiB. ``--multiple`` reads the whole file (a CSV only)."""
    asked = (args.engine == "ray" or args.chunk_rows is not None or is_parquet(args.data)
             or is_parquet(args.out))
    if args.multiple:
        if asked:
            raise ValueError("--multiple reads the whole file: use a CSV in and out, "
                             "without --engine ray or --chunk-rows")
        return False
    big = Path(args.data).is_file() and Path(args.data).stat().st_size > STREAM_ABOVE_BYTES
    return asked or big


def impute_command(args: argparse.Namespace, run: Run) -> None:
    """`notmiwae impute DATA --run RUN --out OUT`, streamed (see the module docstring),
    with ``run`` the run folder as `notmiwae` opened it (its users' parts loaded)."""
    if not Path(args.data).is_file():
        raise FileNotFoundError(f"no such file: {args.data}")
    imputer, blob = run.imputer(), run.imputer_bytes()
    chunk_rows = chunk_size(args.chunk_rows or CHUNK_ROWS)
    if args.engine == "ray":
        from . import ray_engine

        chunks = ray_engine.impute_table(args.data, blob, feature_names(imputer),
                                         args.index_col, imputation_seed(imputer),
                                         chunk_rows, args.gpus_per_actor, args.address)
    else:
        chunks = impute_stream(imputer, read_chunks(args.data, chunk_rows), args.index_col,
                               imputation_seed(imputer), args.data)
    rows = write_table(chunks, args.out, keep_index=args.index_col is not None)
    print(f"wrote {args.out} ({rows} rows)")


def chunk_size(rows: int) -> int:
    """``rows`` rounded up to a whole number of imputation row blocks."""
    if rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1, got {rows}")
    return -(-rows // ROW_BLOCK) * ROW_BLOCK


def imputer_from_bytes(blob: bytes, device: str | None = None) -> NotMIWAEImputer:
    """An imputer from the bytes of its saved file (``Run.imputer_bytes``)."""
    from .imputer import NotMIWAEImputer

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "imputer.pt"
        path.write_bytes(blob)
        return NotMIWAEImputer.load(path, device)


def feature_names(imputer: NotMIWAEImputer) -> list[str] | None:
    """The columns the imputer was fitted on, or None when it was fitted on an array."""
    names = getattr(imputer, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def imputation_seed(imputer: NotMIWAEImputer) -> int:
    """The seed the imputer's own ``transform`` would use: ``random_state``, else a fresh one."""
    if imputer.random_state is not None:
        return int(imputer.random_state)
    return int(np.random.SeedSequence().entropy % 2**32)


# -- reading ---------------------------------------------------------------------------------
def read_chunks(path: str | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, ``chunk_rows`` at a time, indexed by their 0-based position."""
    if is_parquet(path):
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
    else:
        with pd.read_csv(path, chunksize=chunk_rows) as reader:
            yield from reader


# -- imputing --------------------------------------------------------------------------------
def impute_stream(imputer: NotMIWAEImputer, chunks: Iterable[pd.DataFrame],
                  index_col: str | None, seed: int,
                  source: str | Path = "input") -> Iterator[pd.DataFrame]:
    """Each chunk imputed, the random generators seeded once with ``seed`` and carried
    over from chunk to chunk (so, chunk sizes being multiples of the row blocks, the
    result is that of imputing all rows at once); the caller's generators are restored."""
    state = pyro.util.get_rng_state()
    try:
        pyro.set_rng_seed(seed)
        for chunk in chunks:
            yield impute_frame(imputer, chunk, index_col, source=source)
    finally:
        pyro.util.set_rng_state(state)


def impute_frame(imputer: NotMIWAEImputer, frame: pd.DataFrame, index_col: str | None,
                 seed: int | None = None, source: str | Path = "input") -> pd.DataFrame:
    """One chunk of rows as read (the identifier column ``index_col`` among its columns)
    with its missing cells imputed, indexed by the identifier (else as read).

    ``seed``: seed the draws for this chunk alone; None: continue the current generators.
    """
    from .imputation import impute
    from .imputer import as_float_array

    if index_col is not None:
        if index_col not in frame.columns:
            raise ValueError(f"{source}: no column {index_col!r} to use as index")
        frame = frame.set_index(index_col)
    check_columns(imputer, frame, source)
    values = as_float_array(frame)
    observed = ~np.isnan(values)
    standard = np.where(observed, (values - imputer.mean_) / imputer.scale_, 0.0)
    x = torch.tensor(standard, dtype=torch.float32)
    if seed is not None:
        pyro.set_rng_seed(seed)
    filled = impute(imputer.programs_, x, torch.tensor(observed), imputer.num_samples,
                    imputer.estimator, ensemble=imputer.ensemble,
                    compile=imputer.compile)
    imputed = filled.detach().cpu().double().numpy() * imputer.scale_ + imputer.mean_
    return pd.DataFrame(np.where(observed, values, imputed), index=frame.index,
                        columns=frame.columns)


def check_columns(imputer: NotMIWAEImputer, frame: pd.DataFrame, source: str | Path) -> None:
    """The chunk's feature columns must be those the imputer was fitted on, in order."""
    names = feature_names(imputer)
    have = [str(c) for c in frame.columns]
    if names is None:
        if len(have) != imputer.n_features_in_:
            raise ValueError(f"{source}: {len(have)} feature columns, the run was fitted "
                             f"on {imputer.n_features_in_}")
    elif have != names:
        raise ValueError(f"{source}: feature columns {have} differ from the run's {names}")


def batch_seed(seed: int, frame: pd.DataFrame) -> int:
    """A seed for one batch imputed on its own: from ``seed``, the batch's length and its
    first row, so the same batch of the same file always gets the same draws."""
    first = pd.util.hash_pandas_object(frame.head(1), index=False).to_numpy(dtype=np.uint64)
    entropy = [int(seed), len(frame), *(int(v) for v in first)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# -- writing ---------------------------------------------------------------------------------
def write_table(chunks: Iterable[pd.DataFrame], out: str | Path, keep_index: bool) -> int:
    """Write the chunks in order to ``out`` (Parquet for .parquet/.pq, else CSV; the index
    as the first column when ``keep_index``), via OUT.partial; returns the row count."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    chunks = _reporting(chunks)
    try:
        if is_parquet(out):
            rows = _write_parquet(chunks, partial, keep_index)
        else:
            rows = _write_csv(chunks, partial, keep_index)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    return rows


def _reporting(chunks: Iterable[pd.DataFrame],
               every: int = 100_000) -> Iterator[pd.DataFrame]:
    """The chunks, with a line each time another ``every`` rows have gone through."""
    start, rows, said = time.perf_counter(), 0, 0
    for chunk in chunks:
        yield chunk
        rows += len(chunk)
        if rows - said >= every:
            said = rows
            print(f"{rows:,} rows imputed ({time.perf_counter() - start:.0f} s)", flush=True)


def _write_csv(chunks: Iterable[pd.DataFrame], path: Path, keep_index: bool) -> int:
    rows = 0
    with open(path, "w", newline="") as handle:
        for chunk in chunks:
            chunk.to_csv(handle, header=rows == 0, index=keep_index)
            rows += len(chunk)
    if rows == 0:
        raise ValueError("no data rows")
    return rows


def _write_parquet(chunks: Iterable[pd.DataFrame], path: Path, keep_index: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, writer = 0, None
    try:
        for chunk in chunks:
            frame = chunk.reset_index() if keep_index else chunk
            if writer is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = pq.ParquetWriter(path, table.schema)
            else:
                table = pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False)
            writer.write_table(table)
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no data rows")
    return rows
