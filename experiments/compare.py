"""Compare two result folders of ``notmiwae.experiments.uci``, run by run, paired by seed.

    python -m notmiwae.experiments.compare results/uci-banknote results/uci-banknote-glorot

For every (data set, model) in both folders' runs.csv: the mean RMSE of each, the mean
difference (second - first) with a 95% t-interval over the seeds both have, the
relative change and the seeds where the second is lower. Prints a markdown table;
``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .report import one_setting, paired, paired_markdown


def read_runs(folder: str) -> pd.DataFrame:
    """FOLDER/runs.csv, or a clear error naming the missing file."""
    path = Path(folder) / "runs.csv"
    if not path.is_file():
        raise SystemExit(f"{folder}: no runs.csv (give a folder written by "
                         "notmiwae.experiments.uci)")
    return one_setting(pd.read_csv(path), str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notmiwae.experiments.compare", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="result folder: the reference")
    parser.add_argument("second", help="result folder compared with it")
    parser.add_argument("--labels", default=None,
                        help="two comma-separated names for the columns "
                             "(default: the folders' names)")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    labels = tuple(args.labels.split(",")) if args.labels else (
        Path(args.first).name, Path(args.second).name)
    if len(labels) != 2 or labels[0] == labels[1]:
        parser.error(f"--labels needs two different names, got {args.labels!r}")
    table = paired(read_runs(args.first), read_runs(args.second), labels)
    if table.empty:
        raise SystemExit("no (data set, model, seed) appears in both folders")
    text = (f"`{args.second}` against `{args.first}`, paired by seed (RMSE over the missing "
            f"entries; lower is better).\n\n" + paired_markdown(table, labels))
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
