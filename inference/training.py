"""Training by stochastic gradient ascent on the importance-weighted bound.

Each iteration draws a minibatch of B rows, K particles per row, and takes an Adam step
on -(1/B) sum_i log (1/K) sum_k w_ik.  ``objective="iw"`` computes the weights from one
run of the program (:mod:`notmiwae.inference.importance`); ``objective="renyi"`` lets Pyro's
``RenyiELBO(alpha=0)`` do it, which is the same bound for this program (one data plate,
no subsampling, all guide sites reparameterized) and is kept as a cross-check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from numbers import Integral
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro.infer import RenyiELBO
from tqdm.auto import tqdm

from notmiwae.models.guide import AmortizedGuide
from notmiwae.models.networks import glorot_
from notmiwae.models.program import MAX_PLATE_NESTING, NotMIWAE
from notmiwae.models.registry import ModelConfig, build_model
from notmiwae.models.replicas import select_replica, stack_replicas

from .data import masked_data
from .device import default_device, flush_denormals
from .importance import iw_bound, log_importance_weights
from .noise import ReplicaNoise, generators
from .snapshots import (
    Minibatches,
    TrainingState,
    fingerprint,
    identity,
    load_snapshot,
    save_snapshot,
)
from .stopping import TrainingInterrupted, check_bound, deferred_interrupt


def _glorot_missing(program: NotMIWAE) -> NotMIWAE:
    """Only the missing model drawn as the paper's TensorFlow code does (an ablation)."""
    if program.missingness is not None:
        glorot_(program.missingness)
    return program


INITS = {"torch": lambda program: program,  # nn.Linear's default; self-masking W = b = 0
         "glorot": glorot_,  # everything as the paper's TensorFlow code
         "glorot-missing": _glorot_missing}


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation settings; the paper's are iterations=100_000, B=16, K=20, lr=1e-3."""

    iterations: int = 100_000
    batch_size: int = 16
    num_particles: int = 20
    learning_rate: float = 1e-3
    seed: int = 0
    objective: str = "iw"
    init: str = "torch"  # "glorot": Keras' default (notmiwae.models.networks.glorot_) everywhere;
    # "glorot-missing": only the missing model's layers

    def __post_init__(self) -> None:
        if self.objective not in ("iw", "renyi"):
            raise ValueError(f"objective must be 'iw' or 'renyi', got {self.objective!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {sorted(INITS)}, got {self.init!r}")
        for name in ("iterations", "batch_size", "num_particles", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) \
                    or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be a whole number >= "
                                 f"{0 if name == 'seed' else 1}, got {value!r}")


@dataclass
class FitResult:
    """A trained program, its per-iteration bound (mean over the minibatch rows), seconds.

    With R replicas, ``program`` holds all of them, ``history`` is (iterations, R) and
    ``replica(r)`` is replica r as a single program: the run of seed ``seed + r``.
    """

    program: NotMIWAE
    model_config: ModelConfig
    train_config: TrainConfig
    history: np.ndarray = field(repr=False)
    seconds: float = 0.0

    def replica(self, r: int) -> NotMIWAE:
        """Replica r alone, as a single program (the run with seed ``seed + r``)."""
        return select_replica(self.model_config, self.program, r)

    def save(self, path: str, replica: int = 0) -> None:
        """Save one replica as a checkpoint that ``load_checkpoint`` rebuilds."""
        train = replace(self.train_config, seed=self.train_config.seed + replica)
        save_checkpoint(path, self.replica(replica), self.model_config, train)


def replica_seeds(seed: int, replicas: int) -> list[int]:
    """Replica r is the run with seed ``seed + r``."""
    return [seed + r for r in range(replicas)]


def init_program(config: ModelConfig, seeds: list[int], device: torch.device,
                 init: str = "torch") -> NotMIWAE:
    """Replica r initialised exactly as a single program built after ``set_rng_seed(seeds[r])``;
    ``init="glorot"`` then re-draws its dense layers as Keras would."""
    singles = []
    for seed in seeds:
        pyro.set_rng_seed(seed)
        singles.append(INITS[init](build_model(config)).to(device))
    return stack_replicas(config, singles)


def fit(model_config: ModelConfig, x: torch.Tensor, mask: torch.Tensor,
        train_config: TrainConfig = TrainConfig(), device: str | None = None,
        progress: bool = True, replicas: int = 1, y: torch.Tensor | None = None,
        snapshot: str | Path | None = None, snapshot_every: int = 5000) -> FitResult:
    """Build the program from ``model_config`` (initialised from the seed) and train it.

    ``x`` (N, D) float with missing entries set to 0, ``mask`` (N, D) bool, True = observed.
    ``replicas=R`` trains the runs of seeds seed, ..., seed + R - 1 at once, in one program.
    ``y`` (N,): the target, for a jointly supervised model (``model_config.target``).
    ``snapshot``: a file where the training state is saved every ``snapshot_every``
    iterations and at the end (:mod:`notmiwae.inference.snapshots`); if it exists, training resumes
    from it and ends exactly as an uninterrupted run would. A bound that is no longer finite
    raises ``TrainingDiverged``; Ctrl-C stops after the current step, saves the snapshot and
    raises ``TrainingInterrupted`` (:mod:`notmiwae.inference.stopping`).
    """
    if model_config.target != (y is not None):
        raise ValueError("a model with target=True trains on y, and only such a model does")
    if snapshot_every < 1:
        raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
    dev = default_device(device)
    x, mask = masked_data(x, mask)
    if len(x) == 0 or x.shape[1] != model_config.n_features:
        raise ValueError(f"x {tuple(x.shape)}: the model expects rows of "
                         f"{model_config.n_features} features, and at least one row")
    seeds = replica_seeds(train_config.seed, replicas)
    program = init_program(model_config, seeds, dev, train_config.init)
    x, mask = x.to(dev), mask.to(dev)
    y = None if y is None else y.reshape(len(x), 1).to(dev, x.dtype)
    # Each replica orders its minibatches with its own generator, seeded like its noise
    # generator. The two read one stream at different rates (N numbers an epoch, thousands
    # a step), so row orders reuse the numbers behind the first steps' noise: a weak
    # dependence, kept so that results stay reproducible; seeding them apart would end it.
    state = TrainingState(
        program, make_optimizer(program, train_config.learning_rate), generators(seeds, dev),
        [Minibatches(len(x), train_config.batch_size, torch.Generator().manual_seed(s))
         for s in seeds])
    if train_config.objective == "renyi" and replicas != 1:
        raise ValueError("objective='renyi' trains one replica at a time")
    make_step = _renyi_step if train_config.objective == "renyi" else _iw_step
    step = make_step(program, train_config, state.noise, state.optimizer)
    history = np.empty((train_config.iterations, replicas))
    first, seconds = 0, 0.0
    ident = identity(model_config, train_config, replicas, fingerprint(x, mask, y), dev)
    if snapshot is not None and Path(snapshot).exists():
        first, seconds = load_snapshot(snapshot, ident, train_config.iterations, state,
                                       history)
    start = time.perf_counter() - seconds
    bar = tqdm(range(first, train_config.iterations), disable=not progress, desc="training",
               mininterval=1.0, initial=first, total=train_config.iterations)
    with pyro.validation_enabled(False), flush_denormals(), deferred_interrupt() as stop:
        for it in bar:
            history[it] = step(*_minibatch(state.batches, x, mask, y))
            check_bound(history[it], it + 1, snapshot)  # before a snapshot can keep it
            if progress and it % 200 == 199:
                bar.set_postfix(bound=f"{history[max(0, it - 999):it + 1].mean():.3f}")
            if snapshot is not None and ((it + 1) % snapshot_every == 0 or stop.requested):
                save_snapshot(snapshot, ident, it + 1, state, history,
                              time.perf_counter() - start)
            if stop.requested:  # Ctrl-C: stopped after a whole step, its state saved
                raise TrainingInterrupted(it + 1, snapshot)
    seconds = time.perf_counter() - start
    if (snapshot is not None and first < train_config.iterations
            and train_config.iterations % snapshot_every):  # else the loop just saved it
        save_snapshot(snapshot, ident, train_config.iterations, state, history, seconds)
    program.eval()
    return FitResult(program, model_config, train_config,
                     history[:, 0] if replicas == 1 else history, seconds)


def _minibatch(batches: list[Minibatches], x: torch.Tensor, mask: torch.Tensor,
               y: torch.Tensor | None) -> tuple:
    """The next rows of x, mask (and y); with R replicas (R, 1, B, ...): one minibatch
    per replica, broadcast over the K particles."""
    idx = torch.stack([next(b) for b in batches]).to(x.device)
    xb, mb, yb = x[idx], mask[idx], None if y is None else y[idx]
    if len(batches) == 1:
        return xb[0], mb[0], None if yb is None else yb[0]
    return xb.unsqueeze(1), mb.unsqueeze(1), None if yb is None else yb.unsqueeze(1)


def make_optimizer(program: NotMIWAE, learning_rate: float) -> torch.optim.Optimizer:
    """Adam, element-wise: stacked replicas train exactly as separate runs."""
    return torch.optim.Adam(program.parameters(), lr=learning_rate, foreach=True)


def _iw_step(program: NotMIWAE, cfg: TrainConfig, noise: list[torch.Generator],
             optimizer: torch.optim.Optimizer) -> Callable[..., np.ndarray]:

    def step(x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor | None = None) -> np.ndarray:
        log_w, _ = log_importance_weights(program, x, mask, cfg.num_particles, noise, y)
        bound = iw_bound(log_w).mean(-1)  # per replica: mean over the minibatch rows
        optimizer.zero_grad(set_to_none=True)
        (-bound.sum()).backward()  # replicas share no parameter: the sum separates them
        optimizer.step()
        return bound.detach().cpu().numpy()

    return step


def _renyi_step(program: NotMIWAE, cfg: TrainConfig, noise: list[torch.Generator],
                optimizer: torch.optim.Optimizer) -> Callable[..., float]:
    elbo = RenyiELBO(alpha=0.0, num_particles=cfg.num_particles, vectorize_particles=True,
                     max_plate_nesting=MAX_PLATE_NESTING)

    def model(x, mask, y=None):
        pyro.module("notmiwae", program)  # param sites, so that RenyiELBO differentiates
        return program.model(x, mask, y)

    guide = AmortizedGuide(model, program.guide.encoders)

    def step(x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor | None = None) -> float:
        optimizer.zero_grad(set_to_none=True)
        with ReplicaNoise(noise):  # the same draws as the "iw" objective
            loss = elbo.loss_and_grads(model, guide, x, mask, y)  # -sum over rows
        for p in program.parameters():  # the "iw" objective is a mean over rows
            if p.grad is not None:
                p.grad.div_(len(x))
        optimizer.step()
        return -loss / len(x)

    return step


def save_checkpoint(path: str, program: NotMIWAE, model_config: ModelConfig,
                    train_config: TrainConfig | None = None, extra: dict | None = None) -> None:
    """Parameters plus the configuration that built them (and ``extra`` entries)."""
    torch.save({"format": 1, "model_config": model_config.to_dict(),
                "train_config": None if train_config is None else asdict(train_config),
                "state_dict": program.state_dict(), **(extra or {})}, path)


def read_checkpoint(path: str, device: str | None = None,
                    ) -> tuple[NotMIWAE, ModelConfig, dict]:
    """Rebuild the program from its saved configuration; also return the saved entries."""
    try:
        blob = torch.load(path, map_location=default_device(device), weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint not found: {path}") from None
    if not isinstance(blob, dict) or "model_config" not in blob:
        raise ValueError(f"{path} is not a notmiwae-pyro checkpoint")
    config = ModelConfig(**blob["model_config"])
    program = build_model(config).to(default_device(device))
    program.load_state_dict(blob["state_dict"])
    return program.eval(), config, blob


def load_checkpoint(path: str, device: str | None = None) -> tuple[NotMIWAE, ModelConfig]:
    """The program saved by :func:`save_checkpoint`, and its configuration."""
    program, config, _ = read_checkpoint(path, device)
    return program, config
