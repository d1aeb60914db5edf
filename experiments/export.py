"""Write a bundled data set as CSV with the paper's MNAR mechanism applied (empty = missing).

    python -m notmiwae.experiments.export --dataset banknote --out banknote_mnar.csv \
        --truth banknote_complete.csv
"""

from __future__ import annotations

import argparse

from .datasets import DATASETS, load_dataset
from .mechanisms import paper_mnar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notmiwae.experiments.export", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS),
                        help="bundled UCI data set")
    parser.add_argument("--offset", type=float, default=0.0,
                        help="MNAR cut-off: mean + OFFSET standard deviations")
    parser.add_argument("--out", required=True, help="CSV with missing cells left empty")
    parser.add_argument("--truth", help="also write the complete data here")
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset)
    data.where(paper_mnar(data.to_numpy(), args.offset)).to_csv(args.out, index=False)
    if args.truth:
        data.to_csv(args.truth, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
