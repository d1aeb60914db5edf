"""An experiment's output folder: the log of its commands and the settings of its runs.

Runners resume: a second invocation with the same ``--out`` skips finished runs. What a
run's row does not record must then be the same for every run in the folder, so it is
kept in ``OUT/settings.json`` and a run with other values is refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from notmiwae.inference.tables import write_csv


def check_settings(out: Path, settings: dict, earlier_default: dict) -> None:
    """Refuse ``settings`` that differ from those of the runs already in ``out``.

    A folder that has ``runs.csv`` but no ``settings.json`` (written before the settings
    were kept) is taken to hold runs made with ``earlier_default``.
    """
    path = out / "settings.json"
    if (out / "runs.csv").exists():
        before = dict(earlier_default)
        if path.exists():
            try:
                before.update(json.loads(path.read_text()))
            except (json.JSONDecodeError, TypeError, ValueError):
                message = f"{path}: not a JSON object of settings; fix or remove it"
                raise SystemExit(message) from None
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            said = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise SystemExit(f"{out} holds runs made with other settings ({said}); "
                             f"use another --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1) + "\n")


def log_command(out: Path, module: str, argv: list[str] | None) -> None:
    """Add the command line to ``OUT/commands.txt`` unless it is there already (a
    resumed run is the same command)."""
    line = f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)
    path = out / "commands.txt"
    if path.exists() and line in path.read_text().splitlines():
        return
    with open(path, "a") as log:
        log.write(line + "\n")


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to the CSV at ``path`` (created with a header if absent), in the
    file's column order. Rows with a column the file lacks (a folder begun before that
    column existed) rewrite the file whole with the new column, empty in older rows."""
    frame = pd.DataFrame(rows)
    if not path.exists():
        write_csv(frame, path, index=False)
        return
    with open(path) as handle:
        header = handle.readline().rstrip("\n").split(",")
    if set(frame.columns) <= set(header):
        frame.reindex(columns=header).to_csv(path, mode="a", header=False, index=False)
    else:
        write_csv(pd.concat([pd.read_csv(path), frame], ignore_index=True), path, index=False)
