"""The paper's UCI experiment (Table 1), resumable.

Example (a few minutes; 20,000 iterations, a fifth of the paper's 100,000)::

    python -m notmiwae.experiments.uci --datasets banknote \
        --models notmiwae:selfmasking_known,miwae,mean --seeds 1 --iterations 20000 \
        --impute-samples 1000 --out runs/quick

Writes OUT/runs.csv (one row per run, appended as each finishes), OUT/table.md
(mean ± standard error over seeds) and OUT/table.png. Runs already in runs.csv with the
same settings are skipped, so an interrupted grid picks up where it stopped. Each trained
group's final state is kept in OUT/trained/ (not in git; a few MB per group), so later
studies (``notmiwae.experiments.coverage``) reuse the trained runs without training
again. A line per finished group of runs says how long it took and estimates the rest.

The groups run in local processes (--jobs), or as Ray tasks with --engine ray, on this
machine or on a cluster (--address auto); see notmiwae.experiments.engines.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import pandas as pd

from notmiwae.inference.cli import positive_int
from notmiwae.inference.training import INITS, TrainConfig

from .datasets import DATASETS
from .engines import add_engine_options, compile_setting, run_jobs
from .outputs import append_rows, check_settings, log_command
from .protocol import (
    RunSpec,
    add_protocol_options,
    check_names,
    group_label,
    group_replicas,
    group_weight,
    run_group,
    snapshot_path,
    split_list,
)
from .report import markdown_table, plot_table

TRAINED = "trained"  # OUT/trained/: each finished group's final training state
_PAPER = TrainConfig()
DEFAULT_SETTINGS = {"batch_size": _PAPER.batch_size, "particles": _PAPER.num_particles,
                    "init": _PAPER.init}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The runner's options (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m notmiwae.experiments.uci", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="banknote",
                   help=f"comma-separated, from {','.join(DATASETS)}")
    p.add_argument("--models", default="notmiwae:selfmasking_known,miwae,mean",
                   help="comma-separated: mean, mice, missforest, knn, miwae, ppca, "
                        "notmiwae:<missing>, notmiwae-ppca:<missing>, "
                        "masked-notmiwae:<missing>, masked-notmiwae-ppca:<missing>")
    add_protocol_options(p)
    p.add_argument("--offset", type=float, default=0.0,
                   help="MNAR cut-off: mean + OFFSET standard deviations")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULT_SETTINGS["batch_size"],
                   help="rows per step")
    p.add_argument("--particles", type=positive_int, default=DEFAULT_SETTINGS["particles"],
                   help="importance samples K in the training bound")
    p.add_argument("--init", choices=sorted(INITS), default=DEFAULT_SETTINGS["init"],
                   help="torch: nn.Linear's default, self-masking W = b = 0; glorot: as "
                        "the paper's TensorFlow code (Glorot-uniform, zero biases); "
                        "glorot-missing: only the missing model as that code")
    p.add_argument("--replicas", type=positive_int, default=10,
                   help="train up to this many seeds of a configuration as one program")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    add_engine_options(p, training=True)
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    args.datasets = split_list(args.datasets)
    args.models = split_list(args.models)
    check_names(p, args.datasets, args.models)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every (data set, model, seed) not yet in OUT/runs.csv, then write the table."""
    args = parse_args(argv)
    out = Path(args.out)
    check_settings(out, {"batch_size": args.batch_size, "particles": args.particles,
                         "init": args.init}, DEFAULT_SETTINGS)
    log_command(out, "notmiwae.experiments.uci", argv)
    runs_path = out / "runs.csv"
    done = pd.read_csv(runs_path) if runs_path.exists() else pd.DataFrame()
    specs = [RunSpec(d, m, s, args.iterations, args.impute_samples, args.offset,
                     args.batch_size, args.particles, args.init)
             for d in args.datasets for m in args.models for s in range(args.seeds)]
    wanted = {spec.key() for spec in specs}
    finished = {_key_of(r) for r in done.itertuples()}
    todo = [s for s in specs if s.key() not in finished]
    print(f"{len(specs) - len(todo)} runs already in {runs_path}, {len(todo)} to go",
          flush=True)
    rows = _execute(todo, args, runs_path)
    done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
    current = done[[_key_of(r) in wanted for r in done.itertuples()]]
    order = {m: i for i, m in enumerate(args.models)}  # the table follows --models
    current = current.sort_values("model", key=lambda s: s.map(order), kind="stable")
    table = markdown_table(current)
    (out / "table.md").write_text(
        f"Imputation RMSE over missing entries (standardised scale), mean ± s.e. over seeds; "
        f"iterations={args.iterations}, impute samples={args.impute_samples}, "
        f"offset={args.offset}, batch={args.batch_size}, K={args.particles}, "
        f"init={args.init}.\n\n{table}")
    plot_table(current, str(out / "table.png"))
    print(table)
    return 0


def _key_of(row) -> tuple:
    return RunSpec(row.dataset, row.model, row.seed, row.iterations, row.impute_samples,
                   row.offset).key()


def _execute(todo: list[RunSpec], args, runs_path: Path) -> list[dict]:
    rows: list[dict] = []
    # A group stopped midway resumes from these; absolute, for workers in other folders.
    snapshots = runs_path.parent.resolve() / "snapshots"
    trained = runs_path.parent.resolve() / TRAINED
    trained.mkdir(exist_ok=True)

    def record(group: list[RunSpec], group_rows: list[dict]) -> None:
        rows.extend(group_rows)
        append_rows(runs_path, group_rows)
        finished = snapshot_path(snapshots, group)
        if finished.exists():  # the trained state, for later studies
            finished.replace(snapshot_path(trained, group))
        for row in group_rows:
            print(f"{row['dataset']:>9} {row['model']:<32} seed {row['seed']}: "
                  f"RMSE {row['rmse']:.4f} ({row['train_seconds']:.0f} s per run, "
                  f"{row['replicas']} trained together)", flush=True)

    groups = [(group,) for group in group_replicas(todo, args.replicas)]
    alone = args.engine == "local" and min(args.jobs, len(groups)) <= 1  # a bar only then
    run = functools.partial(run_group, device=args.device, snapshots=snapshots,
                            progress=alone and sys.stderr.isatty(), compile=compile_setting(args),
                            snapshot_every=args.snapshot_every)
    for (group,), group_rows in run_jobs(run, groups, args, label=group_label,
                                         weight=group_weight, device=args.device):
        record(group, group_rows)
    if snapshots.is_dir() and not any(snapshots.iterdir()):
        snapshots.rmdir()
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
