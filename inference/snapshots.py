"""Training snapshots: stop a long run anywhere and resume it to the same result.

A snapshot holds everything the next step depends on (:class:`TrainingState`): the
parameters, Adam's moments, each replica's noise generator, torch's global generator
(sites that are not Normal draw from it), each replica's minibatch order and position in
it, plus the bound history so far and the seconds spent. Resuming from one continues the
exact stream of minibatches and noise, so the run ends with the parameters of a run that
was never interrupted. It is written atomically (a temporary file, flushed to disk, then
a rename), so a run killed while writing leaves the previous snapshot intact.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from notmiwae.models.registry import ModelConfig

from .settings import TrainConfig

FORMAT = 2


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
        """The generator, this epoch's permutation and the position in it."""
        return {"generator": self.generator.get_state(), "order": self.order,
                "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.start = state["order"], state["start"]


@dataclass
class TrainingState:
    """Everything a training step reads besides the data."""

    program: nn.Module
    optimizer: torch.optim.Optimizer
    noise: list[torch.Generator]
    batches: list[Minibatches]

    def state_dict(self) -> dict:
        device = self.noise[0].device
        return {"state_dict": self.program.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "noise": [g.get_state() for g in self.noise],
                "batches": [b.state_dict() for b in self.batches],
                "torch_rng": torch.random.get_rng_state(),
                "cuda_rng": (torch.cuda.get_rng_state(device) if device.type == "cuda"
                             else None)}

    def load_state_dict(self, blob: dict) -> None:
        self.program.load_state_dict(blob["state_dict"])
        self.optimizer.load_state_dict(blob["optimizer"])
        for g, state in zip(self.noise, blob["noise"], strict=True):
            g.set_state(state)
        for b, state in zip(self.batches, blob["batches"], strict=True):
            b.load_state_dict(state)
        torch.random.set_rng_state(blob["torch_rng"])
        if blob["cuda_rng"] is not None:
            torch.cuda.set_rng_state(blob["cuda_rng"], self.noise[0].device)


def fingerprint(*tensors: torch.Tensor | None) -> str:
    """sha256 of the tensors' shapes, dtypes and values: which data a run trains on."""
    digest = hashlib.sha256()
    for t in tensors:
        if t is not None:
            t = t.detach().cpu().contiguous()
            digest.update(f"{tuple(t.shape)} {t.dtype};".encode())
            digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def identity(model_config: ModelConfig | None, train_config: TrainConfig, replicas: int,
             data: str, device: torch.device, program: nn.Module | None = None) -> dict:
    """What a snapshot must match to be resumed: everything but the iteration count
    (a longer run of the same settings continues a shorter one's exact stream) and
    whether the step is compiled.
    ``train_config`` is an :class:`notmiwae.inference.training.TrainConfig`; ``data`` a
    :func:`fingerprint`. A program built by hand (no ``model_config``) is known by the
    names and shapes of its parameters."""
    # The compiled step computes what the eager one does: either may resume the other.
    train = {k: v for k, v in asdict(train_config).items()
             if k not in ("iterations", "compile")}
    model = (model_config.to_dict() if model_config is not None else
             {name: list(p.shape) for name, p in program.named_parameters()})
    return {"model_config": model, "train_config": train,
            "replicas": replicas, "data": data, "device": device.type}


def save_snapshot(path: str | Path, ident: dict, iteration: int, state: TrainingState,
                  history: np.ndarray, seconds: float) -> None:
    """Write the state after ``iteration`` steps, with ``history[:iteration]``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "identity": ident, "iteration": iteration,
            **state.state_dict(),
            "history": torch.from_numpy(history[:iteration].copy()), "seconds": seconds}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(blob, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_snapshot(path: str | Path, ident: dict, iterations: int, state: TrainingState,
                  history: np.ndarray) -> tuple[int, float]:
    """Restore a snapshot into ``state`` and ``history``; returns (iteration, seconds).

    Refuses, naming the file and what differs, a snapshot of another run or of more
    iterations than asked for.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, ...
        raise ValueError(f"{path} is not a readable training snapshot: {err}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a training snapshot of format {FORMAT}")
    if blob["identity"] != ident:
        raise ValueError(f"{path} is a snapshot of another run ("
                         + "; ".join(differences(blob["identity"], ident))
                         + "); delete it to start afresh")
    iteration = blob["iteration"]
    if iteration > iterations:
        raise ValueError(f"{path} has already trained {iteration} iterations, more than "
                         f"the {iterations} asked for")
    state.load_state_dict(blob)
    history[:iteration] = blob["history"].numpy()
    return iteration, blob["seconds"]


def differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """'key: saved -> now' for every entry that differs, nested dicts flattened."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            if key == "data":
                out.append("data: other values (the fingerprints differ)")
            else:
                out.append(f"{prefix}{key}: {a!r} in the snapshot, {b!r} now")
    return out
