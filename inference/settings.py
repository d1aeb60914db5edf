"""The settings of a training run: optimisation and initialisation (no engine, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from notmiwae.models.networks import glorot_
from notmiwae.models.program import NotMIWAE


def _glorot_missing(program: NotMIWAE) -> NotMIWAE:
    """Only the missing model drawn as the paper's TensorFlow code does (an ablation)."""
    if program.missingness is not None:
        glorot_(program.missingness)
    return program


COMPILE_FROM = 5_000  # iterations from which compile="auto" compiles
# Row-samples (rows x L x programs) from which compile="auto" compiles imputation: compiled,
# a row-sample costs 0.4 to 1.1 us less (results/bench.md), so the 2 to 8 s of compiling
# pay back from about 2 to 20 million on.
COMPILE_IMPUTATION_FROM = 20_000_000
INITS = {"torch": lambda program: program,  # nn.Linear's default; self-masking W = b = 0
         "glorot": glorot_,  # everything as the paper's TensorFlow code
         "glorot-missing": _glorot_missing}


def imputation_compiles(compile: bool | str, row_samples: int) -> bool:
    """Whether an imputation of ``row_samples`` (rows x L x programs) uses compiled
    weights: ``compile``, with "auto" resolved (``COMPILE_IMPUTATION_FROM`` on)."""
    if compile == "auto":
        return row_samples >= COMPILE_IMPUTATION_FROM
    return bool(compile)


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation settings; the paper's are iterations=100_000, B=16, K=20, lr=1e-3.

    Parameters
    ----------
    iterations : int, default=100_000
        Adam steps.
    batch_size : int, default=16
        Rows per step (B).
    num_particles : int, default=20
        Importance samples per row (K).
    learning_rate : float, default=1e-3
        Adam's step size.
    seed : int, default=0
        Seeds initialisation, minibatch order and noise; replica r uses seed + r.
    objective : {"iw", "renyi"}, default="iw"
        The bound from the program's trace, or Pyro's RenyiELBO(alpha=0) (the same
        bound, a cross-check; one replica).
    init : {"torch", "glorot", "glorot-missing"}, default="torch"
        How the networks are initialised (see ``INITS``).
    compile : bool or "auto", default="auto"
        Train with the compiled step (:mod:`notmiwae.inference.compiled`): the same
        bound and gradients, traced and compiled once (10 to 90 s) and then faster per
        step. "auto": compile when ``iterations >= COMPILE_FROM`` (5,000; below that
        the compiling costs more than it saves on a 2-core CPU: ``results/bench.md``).

    Examples
    --------
    >>> TrainConfig(iterations=2_000, seed=3).num_particles
    20
    """

    iterations: int = 100_000
    batch_size: int = 16
    num_particles: int = 20
    learning_rate: float = 1e-3
    seed: int = 0
    objective: str = "iw"
    init: str = "torch"  # "glorot": Keras' default (models.networks.glorot_) everywhere;
    # "glorot-missing": only the missing model's layers
    compile: bool | str = "auto"  # the compiled step (notmiwae.inference.compiled)

    def compiles(self) -> bool:
        """Whether training uses the compiled step: ``compile``, with "auto" resolved
        (the 'iw' objective and at least ``COMPILE_FROM`` iterations)."""
        if self.compile == "auto":
            return self.objective == "iw" and self.iterations >= COMPILE_FROM
        return bool(self.compile)

    def __post_init__(self) -> None:
        if self.objective not in ("iw", "renyi"):
            raise ValueError(f"objective must be 'iw' or 'renyi', got {self.objective!r}")
        if not isinstance(self.compile, bool) and self.compile != "auto":
            raise ValueError(f"compile must be true, false or 'auto', got {self.compile!r}")
        if self.compile is True and self.objective != "iw":
            raise ValueError("compile=True compiles the 'iw' objective only")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {sorted(INITS)}, got {self.init!r}")
        for name in ("iterations", "batch_size", "num_particles", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) \
                    or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be a whole number >= "
                                 f"{0 if name == 'seed' else 1}, got {value!r}")
