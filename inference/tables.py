"""Files in and out: reading a data table (CSV) and writing outputs atomically.

Every problem with a file is a :class:`DataError` (a ``ValueError``) or an ``OSError``
whose message names the file, and the column, row or value where there is one. Outputs
are written to a temporary file in the destination folder and renamed over the target,
so an interrupted command leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

SNIFF_BYTES = 64 * 1024  # read to tell a text table from a binary file


class DataError(ValueError):
    """Input data the imputer cannot use; the message names the column, row or value."""


def read_table(path: str | Path, index_col: str | None = None,
               index_required: bool = True) -> pd.DataFrame:
    """The CSV at ``path`` as a DataFrame (empty cells, NA and NaN are missing).

    ``index_col`` names a column to keep as row labels rather than a feature (if the file
    has it, when not ``index_required``). Refused, with the file named: a missing file, a
    folder, a binary or otherwise unreadable file, an empty file, a header without rows,
    duplicate column names, an unknown ``index_col``.
    """
    path = Path(path)
    check_readable(path)
    header = _header(path)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column name(s) {duplicates}; "
                        "every column needs its own name")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV file: {_first_line(err)}") from None
    if index_col is not None and (index_required or index_col in frame.columns):
        if index_col not in frame.columns:
            raise DataError(f"{path}: no column {index_col!r} to use as index; columns are "
                            f"{_shorten(list(frame.columns))}")
        frame = frame.set_index(index_col)
    if len(frame) == 0:
        raise DataError(f"{path} has a header ({_shorten(list(frame.columns))}) "
                        "but no data rows")
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no feature column besides the index {index_col!r}")
    return frame


def check_readable(path: str | Path) -> None:
    """Refuse, naming it, a missing, empty, binary or non-UTF-8 file, or a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; name a CSV file")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise DataError(f"{path} is empty: a CSV file needs a header line and data rows")
    if b"\x00" in head:
        raise DataError(f"{path} is not a CSV file (it holds binary data); save the table "
                        "as CSV, with a header line")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a character cut by SNIFF_BYTES
            raise DataError(f"{path} is not a UTF-8 text file (byte {err.start}); save it "
                            "as CSV in UTF-8") from None


def _header(path: Path) -> list[str]:
    """The column names of the first line, as written (pandas renames duplicates)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        first = next(csv.reader(io.StringIO(_first_record(handle))), [])
    return first


def _first_record(handle) -> str:
    """The first non-blank line (a quoted header spanning lines is rare; one line is read)."""
    for line in handle:
        if line.strip():
            return line
    return ""


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _shorten(names: list, limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def output_path(path: str | Path) -> Path:
    """``path`` with its folder created; refused if the path names a folder."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"--out {path} is a folder; name a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cannot create the folder of {path}: "
                                 f"{_existing_file_above(path)} is a file") from None
    return path


def _existing_file_above(path: Path) -> Path:
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` if the block succeeds, removed
    if it fails. The folder is created."""
    path = output_path(path)
    # The suffix is kept: some writers (matplotlib) choose the format by it.
    tmp_path = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp_path
        with tmp_path.open("rb+") as flushed:
            os.fsync(flushed.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_csv(frame: pd.DataFrame, path: str | Path, **to_csv) -> None:
    """``frame.to_csv(path, **to_csv)``, written whole or not at all."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **to_csv)


def write_text(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def align_columns(frame: pd.DataFrame, expected: list[str], source: str | Path) -> pd.DataFrame:
    """``frame`` with its columns in the order ``expected``; a file whose columns differ
    is refused, naming the missing and the extra ones."""
    got = [str(c) for c in frame.columns]
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if missing or extra:
        parts = [f"{what} {_shorten(names)}" for what, names in
                 (("missing", missing), ("extra", extra)) if names]
        raise DataError(f"{source}: the columns differ from the run's: " + "; ".join(parts)
                        + (" (an identifier column? pass --index-col)" if extra and not missing
                           else ""))
    frame = frame.copy()
    frame.columns = got
    return frame[expected]
