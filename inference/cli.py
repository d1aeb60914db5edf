"""The ``notmiwae`` command: fit, impute, check and render, on CSV files.

Missing cells in a CSV are empty, NA or NaN. Examples::

    notmiwae fit data.csv --model notmiwae:selfmasking_known --iterations 20000 --out run/
    notmiwae fit data.csv --config model.toml --out run/
    notmiwae impute data.csv --run run/ --out imputed.csv
    notmiwae impute data.csv --run run/ --out completed.csv --multiple 5
    notmiwae check data.csv --run run/ --out checks/
    notmiwae render --model notmiwae:linear --out model.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from notmiwae.models.registry import variant_from_name

from . import streaming
from .config import dump_config, load_config

IMPUTER_FILE = "imputer.pt"


def _read_csv(path: str, index_col: str | None) -> pd.DataFrame:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    frame = pd.read_csv(path)
    if index_col is not None:
        if index_col not in frame.columns:
            raise ValueError(f"{path}: no column {index_col!r} to use as index")
        frame = frame.set_index(index_col)
    if frame.empty:
        raise ValueError(f"{path}: no data rows")
    return frame


def _load_run(run: str):
    from .imputer import NotMIWAEImputer

    path = Path(run) / IMPUTER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no {IMPUTER_FILE}; train one with 'notmiwae fit'")
    return NotMIWAEImputer.load(path)


def cmd_fit(args: argparse.Namespace) -> None:
    """`notmiwae fit`: train on a CSV, save the imputer, its config and training curve."""
    from .imputer import NotMIWAEImputer

    params = load_config(args.config) if args.config else {}
    if args.model:
        params.update(variant_from_name(args.model))
    for flag, param in (("iterations", "iterations"), ("seed", "random_state"),
                        ("device", "device")):
        if getattr(args, flag) is not None:
            params[param] = getattr(args, flag)
    data = _read_csv(args.data, args.index_col)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder for the run")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # before training: a bad path fails at once
    try:
        imputer = NotMIWAEImputer(**params, verbose=True).fit(data)
    except BaseException:
        if created:
            out.rmdir()
        raise
    imputer.save(out / IMPUTER_FILE)
    # The seed training used (drawn afresh when random_state is None): config.toml reruns it.
    params = {**imputer.get_params(), "random_state": imputer.seed_}
    (out / "config.toml").write_text(dump_config(params))
    _plot_curve(imputer.history_, out / "training_curve.png")
    print(f"trained {imputer.iterations} iterations in {imputer.train_seconds_:.0f} s; "
          f"saved {out / IMPUTER_FILE}, config.toml, training_curve.png")


def cmd_impute(args: argparse.Namespace) -> None:
    """`notmiwae impute`: fill a CSV with a saved run (or draw --multiple completions)."""
    if streaming.wanted(args):  # Parquet, --engine ray, --chunk-rows or a large file
        return streaming.impute_command(args)
    data = _read_csv(args.data, args.index_col)
    imputer = _load_run(args.run).set_output(transform="pandas")
    if args.multiple:
        parts = [d.assign(imputation=i + 1) for i, d in enumerate(imputer.sample(data,
                                                                                 args.multiple))]
        result = pd.concat(parts)
        # Without an identifier column, "row" (0-based position in the input) ties copies.
        result.to_csv(args.out, index=True, index_label=args.index_col or "row")
    else:
        result = imputer.transform(data)
        result.to_csv(args.out, index=args.index_col is not None)
    print(f"wrote {args.out} ({len(result)} rows)")


def cmd_check(args: argparse.Namespace) -> None:
    """`notmiwae check`: posterior predictive checks of a saved run on a CSV."""
    data = _read_csv(args.data, args.index_col)
    imputer = _load_run(args.run)
    truth = _read_csv(args.truth, args.index_col) if args.truth else None
    summary = imputer.check(data, args.out, X_true=truth, num_replicates=args.replicates)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {Path(args.out) / 'summary.csv'}, summary.md, correlations.csv and plots")


def cmd_render(args: argparse.Namespace) -> None:
    """`notmiwae render`: draw a variant's graphical model."""
    from notmiwae.models.render import render

    print(f"wrote {render(args.model, args.out, args.features)}")


def _plot_curve(history: np.ndarray, path: Path) -> None:
    from .checks import pyplot

    plt = pyplot()
    window = max(1, min(500, len(history) // 20))
    smooth = np.convolve(history, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(np.arange(window, len(history) + 1), smooth)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"bound per row (running mean of {window})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1, else a message naming the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The `notmiwae` command line: one subcommand per task."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="notmiwae", description=__doc__, formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="train an imputer on a CSV", formatter_class=fmt,
                       description="Train on DATA.csv (NaN/empty = missing) and save the run."
                       "\n\nexample:\n  notmiwae fit data.csv --model notmiwae:linear "
                       "--iterations 20000 --out run/")
    p.add_argument("data", metavar="DATA.csv")
    p.add_argument("--config", help="TOML configuration (see inference/config.py)")
    p.add_argument("--model", help="variant name, e.g. miwae, notmiwae:selfmasking_known")
    p.add_argument("--iterations", type=positive_int, metavar="N",
                   help="Adam iterations (default: the config's, else 20000)")
    p.add_argument("--seed", type=int, help="random seed of initialisation and training")
    p.add_argument("--device", help="cpu or cuda (default: cuda when PyTorch sees a GPU)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="folder for imputer.pt, config.toml and training_curve.png")
    p.set_defaults(run_command=cmd_fit)

    p = sub.add_parser("impute", help="fill the missing cells of a CSV", formatter_class=fmt,
                       description="Impute DATA.csv with a trained run.\n\nexamples:\n"
                       "  notmiwae impute data.csv --run run/ --out imputed.csv\n"
                       "  notmiwae impute data.csv --run run/ --out many.csv --multiple 5")
    p.add_argument("data", metavar="DATA.csv")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="a folder made by fit")
    p.add_argument("--out", required=True, metavar="IMPUTED.csv", help="the CSV to write")
    p.add_argument("--multiple", type=positive_int, metavar="M",
                   help="M completed data sets in one long CSV with an 'imputation' column")
    streaming.add_options(p)  # --chunk-rows, --engine, --address, --gpus-per-actor
    p.set_defaults(run_command=cmd_impute)

    p = sub.add_parser("check", help="posterior predictive checks", formatter_class=fmt,
                       description="Replicate (x, s) from the fitted model and compare with "
                       "the data.\n\nexample:\n  notmiwae check data.csv --run run/ --out checks/")
    p.add_argument("data", metavar="DATA.csv")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="a folder made by fit")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for tables and plots")
    p.add_argument("--truth", metavar="COMPLETE.csv",
                   help="the complete data, when known: adds imputed vs true and the "
                   "binned true mechanism")
    p.add_argument("--replicates", type=positive_int, default=20, metavar="S",
                   help="replicated data sets drawn from the model (default 20)")
    p.set_defaults(run_command=cmd_check)

    p = sub.add_parser("render", help="draw a variant's graphical model", formatter_class=fmt,
                       description="Draw the Pyro program with pyro.render_model (Graphviz)."
                       "\n\nexample:\n  notmiwae render --model notmiwae:linear --out m.png")
    p.add_argument("--model", required=True, help="variant name, e.g. notmiwae:linear")
    p.add_argument("--out", required=True, metavar="FILE.png", help="image to write")
    p.add_argument("--features", type=positive_int, default=4, metavar="D",
                   help="number of features drawn (default 4)")
    p.set_defaults(run_command=cmd_render)

    for name in ("fit", "impute", "check"):
        sub.choices[name].add_argument("--index-col", metavar="NAME",
                                       help="a column to keep as row labels, not a feature")
        sub.choices[name].add_argument("--threads", type=positive_int, metavar="T",
                                       help="CPU threads for PyTorch (default: its own "
                                       "choice); 1 is best on a machine busy with other work")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; bad input ends with a one-line error and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.run_command(args)
    except (ValueError, OSError) as err:  # OSError: a file not found, not writable, ...
        print(f"notmiwae {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
