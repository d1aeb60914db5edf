"""Training snapshots: stop a long run anywhere and resume it to the same result.

A snapshot holds everything the next step depends on: the parameters, Adam's moments,
each replica's noise generator, each replica's minibatch order and position in it, the
bound history so far and the seconds spent. Resuming from one continues the exact
stream of minibatches and noise, so the run ends with the parameters of a run that was
never interrupted. It is written atomically (a temporary file, then a rename), so a run
killed while writing leaves the previous snapshot intact.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch


class Minibatches:
    """Endless minibatch indices: a fresh random permutation of the rows every epoch."""

    def __init__(self, n_rows: int, batch_size: int, generator: torch.Generator) -> None:
        self.n_rows = n_rows
        self.batch_size = min(batch_size, n_rows)
        self.generator = generator
        self.order: torch.Tensor | None = None  # this epoch's permutation
        self.start = 0  # where the next minibatch starts in it

    def __iter__(self) -> Minibatches:
        return self

    def __next__(self) -> torch.Tensor:
        if self.order is None or self.start + self.batch_size > self.n_rows:
            self.order = torch.randperm(self.n_rows, generator=self.generator)
            self.start = 0
        idx = self.order[self.start:self.start + self.batch_size]
        self.start += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order,
                "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.start = state["order"], state["start"]


def identity(model_config, train_config, replicas: int, n_rows: int,
             device: torch.device) -> dict:
    """What a snapshot must match to be resumed: everything but the iteration count
    (a longer run of the same settings continues a shorter one's exact stream)."""
    train = {k: v for k, v in asdict(train_config).items() if k != "iterations"}
    return {"model_config": model_config.to_dict(), "train_config": train,
            "replicas": replicas, "n_rows": n_rows, "device": device.type}


def save_snapshot(path: str | Path, ident: dict, iteration: int, program, optimizer,
                  noise: list[torch.Generator], batches: list[Minibatches],
                  history: np.ndarray, seconds: float) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": 1, "identity": ident, "iteration": iteration,
            "state_dict": program.state_dict(), "optimizer": optimizer.state_dict(),
            "noise": [g.get_state() for g in noise],
            "batches": [b.state_dict() for b in batches],
            "history": torch.from_numpy(history[:iteration].copy()), "seconds": seconds}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_snapshot(path: str | Path, ident: dict, iterations: int, program, optimizer,
                  noise: list[torch.Generator], batches: list[Minibatches],
                  history: np.ndarray) -> tuple[int, float]:
    """Restore a snapshot into the given objects; returns (iteration, seconds).

    Refuses, naming the file, a snapshot of other settings or of more iterations.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != 1:
        raise ValueError(f"{path} is not a training snapshot")
    if blob["identity"] != ident:
        raise ValueError(f"{path} is a snapshot of another run (other model, training "
                         "settings, replicas, data or device); delete it to start afresh")
    iteration = blob["iteration"]
    if iteration > iterations:
        raise ValueError(f"{path} has already trained {iteration} iterations, more than "
                         f"the {iterations} asked for")
    program.load_state_dict(blob["state_dict"])
    optimizer.load_state_dict(blob["optimizer"])
    for g, state in zip(noise, blob["noise"], strict=True):
        g.set_state(state)
    for b, state in zip(batches, blob["batches"], strict=True):
        b.load_state_dict(state)
    history[:iteration] = blob["history"].numpy()
    return iteration, blob["seconds"]
