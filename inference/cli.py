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
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from notmiwae.models.registry import FAMILIES, MISSING_MODELS, variant_from_name

from . import streaming
from .config import config_parts, dump_config, load_config
from .stopping import TrainingDiverged, TrainingInterrupted
from .tables import (
    DataError,
    align_columns,
    atomic_path,
    check_readable,
    output_path,
    read_table,
    write_csv,
    write_text,
)
from .user_parts import check_recorded, load_parts

IMPUTER_FILE = "imputer.pt"
RUN_FILE = "run.json"  # the index column and the feature columns, in order
SNAPSHOT_FILE = "snapshot.pt"  # training state while fit runs; removed when it ends
EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 1, 130


@contextmanager
def _about(path: str | Path) -> Iterator[None]:
    """A :class:`DataError` raised inside names the file it is about."""
    try:
        yield
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


class Run:
    """A run folder: the saved imputer and what ``fit`` remembers of its data file."""

    def __init__(self, folder: str | Path, parts: list[str] | None = None) -> None:
        self.folder = Path(folder)
        if not (self.folder / IMPUTER_FILE).is_file():
            raise FileNotFoundError(f"{folder}: no {IMPUTER_FILE}; train one with "
                                    "'notmiwae fit'")
        info = self.folder / RUN_FILE
        self.info = json.loads(info.read_text()) if info.is_file() else {}
        given = load_parts(parts or [])
        try:  # the users' parts it was trained with; --parts may give them from elsewhere
            check_recorded(self.info.get("parts", []), self.folder)
        except FileNotFoundError:
            if not given:
                raise

    def imputer(self):
        from .imputer import NotMIWAEImputer

        imputer = NotMIWAEImputer.load(self.folder / IMPUTER_FILE)
        if "columns" not in self.info and hasattr(imputer, "feature_names_in_"):
            self.info["columns"] = [str(c) for c in imputer.feature_names_in_]
        return imputer

    def imputer_bytes(self) -> bytes:
        """The saved imputer's file, for workers elsewhere (Ray Data's actors)."""
        return (self.folder / IMPUTER_FILE).read_bytes()

    def read(self, path: str, index_col: str | None) -> tuple[pd.DataFrame, list[str]]:
        """A data file read as the run's was, with its index column (unless ``index_col``
        names another): its feature columns in the run's order, and in the file's."""
        remembered = self.info.get("index_col")
        frame = read_table(path, index_col or remembered, index_required=index_col is not None)
        order = [str(c) for c in frame.columns]
        if "columns" in self.info:
            frame = align_columns(frame, self.info["columns"], path)
        return frame, order


def cmd_fit(args: argparse.Namespace) -> None:
    """`notmiwae fit`: train on a CSV, save the imputer, its config and training curve."""
    from .imputer import NotMIWAEImputer

    parts = load_parts(args.parts) + (config_parts(args.config) if args.config else [])
    params = load_config(args.config) if args.config else {}
    if args.model:
        params.update(variant_from_name(args.model))
    if args.compile is not None:
        params["compile"] = args.compile
    for flag, param in (("iterations", "iterations"), ("seed", "random_state"),
                        ("device", "device"), ("replicas", "replicas"),
                        ("ensemble", "ensemble")):
        if getattr(args, flag) is not None:
            params[param] = getattr(args, flag)
    data = read_table(args.data, args.index_col)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder for the run")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # before training: a bad path fails at once
    snapshot = out / SNAPSHOT_FILE
    if snapshot.exists():
        print(f"resuming from {snapshot}")
    try:
        with _about(args.data):
            imputer = NotMIWAEImputer(**params, verbose=True).fit(
                data, snapshot=snapshot, snapshot_every=args.snapshot_every)
    except BaseException:
        if created and not any(out.iterdir()):  # nothing to keep: the folder goes again
            out.rmdir()
        raise
    _save_run(imputer, data, args.index_col, out, parts)
    snapshot.unlink(missing_ok=True)
    print(f"trained {imputer.iterations} iterations in {imputer.train_seconds_:.0f} s; "
          f"saved {out / IMPUTER_FILE}, config.toml, {RUN_FILE}, training_curve.png")
    if not data.isna().to_numpy().any():
        print(f"note: {args.data} has no missing cell: nothing to impute in it")


def _save_run(imputer, data: pd.DataFrame, index_col: str | None, out: Path,
              parts: list[str]) -> None:
    """imputer.pt, config.toml (reruns it), run.json and training_curve.png; both files
    name the users' parts the run needs."""
    imputer.save(out / IMPUTER_FILE)
    # The seed training used (drawn afresh when random_state is None): config.toml reruns it.
    params = {**imputer.get_params(), "random_state": imputer.seed_}
    write_text(dump_config(params, parts), out / "config.toml")
    info = {"index_col": index_col, "columns": [str(c) for c in data.columns],
            "parts": parts}
    write_text(json.dumps(info, indent=1) + "\n", out / RUN_FILE)
    with atomic_path(out / "training_curve.png") as tmp:
        _plot_curve(imputer.history_, tmp)


def cmd_impute(args: argparse.Namespace) -> None:
    """`notmiwae impute`: fill a CSV with a saved run (or draw --multiple completions)."""
    streamed = streaming.wanted(args)  # Parquet, --engine ray, --chunk-rows or a large file
    if not streamed:
        check_readable(args.data)
    run = Run(args.run, args.parts)  # the users' parts it needs are loaded here
    if streamed:
        args.index_col = args.index_col or run.info.get("index_col")
        return streaming.impute_command(args, run)
    imputer = run.imputer().set_output(transform="pandas")
    data, order = run.read(args.data, args.index_col)
    out = output_path(args.out)  # its folder made before the work, not after
    index_col = data.index.name
    with _about(args.data):
        if args.multiple:
            parts = [d[order].assign(imputation=i + 1)
                     for i, d in enumerate(imputer.sample(data, args.multiple))]
            result = pd.concat(parts)
        else:
            result = imputer.transform(data)[order]
    if args.multiple:
        # Without an identifier column, "row" (0-based position in the input) ties copies.
        write_csv(result, out, index=True, index_label=index_col or "row")
    else:
        write_csv(result, out, index=index_col is not None)
    missing = int(data.isna().to_numpy().sum())
    print(f"wrote {out} ({len(result)} rows, {missing} missing cells filled)"
          if missing else f"nothing to impute: {args.data} has no missing cell; "
          f"wrote it unchanged to {out}")


def cmd_check(args: argparse.Namespace) -> None:
    """`notmiwae check`: posterior predictive checks of a saved run on a CSV."""
    check_readable(args.data)
    run = Run(args.run, args.parts)
    imputer = run.imputer()
    data, _ = run.read(args.data, args.index_col)
    truth = run.read(args.truth, args.index_col)[0] if args.truth else None
    with _about(args.data):
        summary = imputer.check(data, args.out, X_true=truth,
                                num_replicates=args.replicates)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {Path(args.out) / 'summary.csv'}, summary.md, correlations.csv and plots")


def cmd_render(args: argparse.Namespace) -> None:
    """`notmiwae render`: draw a variant's graphical model."""
    from notmiwae.models.render import render

    load_parts(args.parts)
    print(f"wrote {render(args.model, args.out, args.features)}")


def _plot_curve(history: np.ndarray, path: Path) -> None:
    from .checks import pyplot

    plt = pyplot()
    history = history.reshape(len(history), -1)  # (iterations, replicas)
    window = max(1, min(500, len(history) // 20))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for r in range(history.shape[1]):
        smooth = np.convolve(history[:, r], np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(history) + 1), smooth,
                label=f"replica {r}" if history.shape[1] > 1 else None)
    if history.shape[1] > 1:
        ax.legend(fontsize=7)
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
    p.add_argument("--model", metavar="NAME", help=_model_help())
    p.add_argument("--iterations", type=positive_int, metavar="N",
                   help="Adam iterations (default: the config's, else 20000)")
    p.add_argument("--snapshot-every", type=positive_int, default=1000, metavar="N",
                   help=f"save the training state in RUN_DIR/{SNAPSHOT_FILE} every N "
                   "iterations and on Ctrl-C (default 1000); the same command, run again, "
                   "resumes from it")
    p.add_argument("--seed", type=int, help="random seed of initialisation and training")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="train with the compiled step and impute with compiled weights "
                   "(the same steps and draws, faster, after seconds to a minute of "
                   "compiling); default: the config's, else training from 5,000 "
                   "iterations on and imputations from 20 million row-samples on")
    p.add_argument("--replicas", type=positive_int, metavar="R",
                   help="train R seeds at once (SEED..SEED+R-1) and impute with all of them, "
                   "an ensemble (default: the config's, else 1)")
    p.add_argument("--ensemble", choices=("pooled", "equal"),
                   help="how R > 1 replicas impute: pooled importance weights (a per-row "
                   "model average; the default) or equal weights")
    p.add_argument("--device", help="cpu or cuda (default: cuda when PyTorch sees a GPU)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help=f"folder for imputer.pt, config.toml, {RUN_FILE} and "
                   "training_curve.png (created)")
    p.set_defaults(run_command=cmd_fit)

    p = sub.add_parser("impute", help="fill the missing cells of a CSV", formatter_class=fmt,
                       description="Impute DATA.csv with a trained run.\n\nexamples:\n"
                       "  notmiwae impute data.csv --run run/ --out imputed.csv\n"
                       "  notmiwae impute data.csv --run run/ --out many.csv --multiple 5")
    p.add_argument("data", metavar="DATA.csv")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="a folder made by fit")
    p.add_argument("--out", required=True, metavar="IMPUTED.csv",
                   help="the CSV to write (its folder is created)")
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

    sub.choices["fit"].add_argument("--index-col", metavar="NAME",
                                    help="a column to keep as row labels, not a feature "
                                    "(remembered by the run)")
    for name in ("impute", "check"):
        sub.choices[name].add_argument("--index-col", metavar="NAME",
                                       help="a column to keep as row labels, not a feature "
                                       "(default: the run's, if the file has it)")
    for name in ("fit", "impute", "check", "render"):
        sub.choices[name].add_argument(
            "--parts", action="append", default=[], metavar="FILE.py|MODULE",
            help="a file or importable module that registers parts of your own "
            "(repeatable; a run remembers those it was trained with)")
    for name in ("fit", "impute", "check"):
        sub.choices[name].add_argument("--threads", type=positive_int, metavar="T",
                                       help="CPU threads for PyTorch (default: its own "
                                       "choice); 1 is best on a machine busy with other work")
    return parser


def _model_help() -> str:
    """The model names fit accepts, and the default."""
    missing = ", ".join(m for m in MISSING_MODELS if m != "ignorable")
    names = ", ".join(f if FAMILIES[f][1] else f"{f}:<missing>" for f in FAMILIES)
    return (f"the model: {names}; <missing> is one of {missing} "
            "(default: the config's, else notmiwae:selfmasking_known)")


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. Every failure ends with one line on stderr, no traceback: bad
    input exits with 2, training that diverged with 1, Ctrl-C with 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    name = f"notmiwae {args.command}"
    try:
        with _one_line_warnings(name):
            args.run_command(args)
    except (ValueError, OSError) as err:  # OSError: a file not found, not writable, ...
        return _fail(f"{name}: error: {err}", EXIT_ERROR)
    except TrainingDiverged as err:
        return _fail(f"{name}: error: {err}", EXIT_DIVERGED)
    except TrainingInterrupted as err:
        return _fail(f"{name}: {err}", EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        return _fail(f"{name}: interrupted; no output was written", EXIT_INTERRUPTED)
    return 0


def _fail(line: str, status: int) -> int:
    print(" ".join(line.split()), file=sys.stderr)  # one line, whatever the message held
    return status


@contextmanager
def _one_line_warnings(name: str) -> Iterator[None]:
    """Warnings printed as 'notmiwae CMD: warning: ...', one line each."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{name}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


if __name__ == "__main__":
    raise SystemExit(main())
