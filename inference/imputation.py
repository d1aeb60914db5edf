"""Imputation by self-normalised importance sampling, and multiple imputation by SIR.

With L proposals (z_l, x^m_l) ~ q(z | x^o) p(x^m | z) and normalised weights
w~_l = w_l / sum_l' w_l',

    "mean"   (the paper's):  x^m_hat = sum_l w~_l E[x^m | z_l]
    "sample" (consistent SNIS estimate of E[x^m | x^o, s]):  x^m_hat = sum_l w~_l x^m_l

Multiple imputation draws l with probability w~_l and returns x^m_l (sampling importance
resampling over the pairs, since w_l depends on x^m_l through p(s | x)).

An ensemble (a sequence of R programs, e.g. the replicas of one training) is used in one
of two ways. "pooled": the R x L samples, L from each program's own proposal, keep their
unnormalised weights w_rl = p_r(x^o, s, x^m_rl, z_rl) / q_r(z_rl | x^o), normalised over
all of them; since each program's (1/L) sum_l w_rl estimates its own p_r(x^o, s), this is
a per-row Bayesian model average with the programs weighed by their evidence for the
row. "equal": each program's estimate, averaged with weight 1/R (multiple imputation: a
draw from a program chosen uniformly).

Every function computes on the program's device and returns on the device of ``x``.

Rows are processed in batches and the L samples in chunks, with running log-sum-exp
accumulators, so memory is bounded for any N and L. With ``compile=True`` each block's
weights come from a compiled graph of the program
(``notmiwae.inference.compiled_imputation``): the same draws from the same seed, the
same results up to rounding, faster once its compiling (seconds) is paid.

On a CPU small blocks (32 rows x 500 samples) keep the decoder's activations in cache,
which is over twice as fast as large blocks (``python -m notmiwae.experiments.bench``);
on a GPU large blocks are faster.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral

import pyro
import torch

from notmiwae.models.program import NotMIWAE

from .compiled_imputation import CompiledWeights
from .data import masked_data
from .device import flush_denormals, program_device
from .importance import weights_and_values
from .settings import imputation_compiles
from .user_warnings import warn

ESTIMATORS = ("mean", "sample")
ENSEMBLES = ("pooled", "equal")
Programs = NotMIWAE | Sequence[NotMIWAE]


class LowEffectiveSampleSize(UserWarning):
    """Rows whose importance weights have an effective sample size below the number of
    draws asked: their draws repeat a few of the L samples."""


def _programs(program: Programs) -> tuple[NotMIWAE, ...]:
    """One program, or an ensemble of them, as a non-empty tuple."""
    programs = (program,) if isinstance(program, NotMIWAE) else tuple(program)
    if not programs:
        raise ValueError("an ensemble needs at least one program")
    return programs


def _groups(programs: tuple[NotMIWAE, ...], ensemble: str) -> list[tuple[NotMIWAE, ...]]:
    """The programs whose weights are normalised together: all of them ("pooled"), or
    each alone ("equal")."""
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    return [programs] if ensemble == "pooled" else [(p,) for p in programs]


def _mixture_ess(per_group: list[torch.Tensor]) -> torch.Tensor:
    """Kish's ESS of R weight sets mixed with weight 1/R each, R^2 / sum_r 1 / ESS_r
    (one set: its own ESS)."""
    if len(per_group) == 1:
        return per_group[0]
    return len(per_group) ** 2 / sum(1 / e for e in per_group)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield min(size, total - start)


VALUES = {  # what is averaged, read off a trace of L_c particles: (L_c, n, F)
    "mean": lambda trace: trace.nodes["x_unobserved"]["fn"].mean,  # E[x | z_l]
    "sample": lambda trace: trace.nodes["x_unobserved"]["value"],  # x_l
    "target": lambda trace: trace.nodes["y"]["fn"].mean,  # E[y | x^o, x^m_l]
    "nothing": lambda trace: None,  # the weights alone
}


def _weighted_chunks(programs, x, mask, num_samples, chunk_size, value, y=None,
                     weights=weights_and_values):
    """Yield (log w (L_c, n), value(trace) (L_c, n, F)) per chunk of samples, L samples
    from each of the ``programs`` in turn, as ``weights`` computes them (eagerly, or a
    :class:`~notmiwae.inference.compiled_imputation.CompiledWeights`)."""
    for program in programs:
        for size in _chunks(num_samples, chunk_size):
            yield weights(program, x, mask, size, value, y)


def block_sizes(device: torch.device, row_batch: int | None, sample_chunk: int | None,
                num_samples: int | None = None) -> tuple[int, int]:
    """Rows per batch and samples per chunk: given, or the defaults for the device.

    On the CPU a block holds about 16,384 (row, sample) pairs: 32 rows of 500-sample
    chunks, or, with fewer samples L, more rows (a power of two, at most 1,024, so that
    blocks always tile the streamed chunks of ``notmiwae impute``)."""
    if device.type == "cuda":
        rows, samples = 1024, 1000
    else:
        samples = 500
        per_row = min(num_samples or samples, sample_chunk or samples)
        rows = min(1024, max(32, 1 << max(1, 16_384 // per_row).bit_length() - 1))
    return row_batch or rows, sample_chunk or samples


def _check(programs: tuple[NotMIWAE, ...], x: torch.Tensor, mask: torch.Tensor,
           num_samples: int):
    if isinstance(num_samples, bool) or not isinstance(num_samples, Integral) or num_samples < 1:
        raise ValueError(f"num_samples must be a whole number >= 1, got {num_samples!r}")
    x, mask = masked_data(x, mask)
    device = program_device(programs[0])
    return x.to(device), mask.to(device)


def _by_blocks(programs: tuple[NotMIWAE, ...], x: torch.Tensor, mask: torch.Tensor,
               num_samples: int, row_batch: int | None, sample_chunk: int | None, seed: int | None,
               estimate: Callable[..., torch.Tensor], dim: int = 0, fill: bool = False,
               compile: bool | str = False) -> torch.Tensor:
    """The steps every estimator shares: check the input, seed (``pyro.set_rng_seed``),
    then ``estimate(x[rows], mask[rows], rows, sample_chunk, weights)`` per block of rows
    (``rows`` a slice, for slicing other per-row inputs; ``weights`` as
    :func:`_weighted_chunks` takes it, compiled with ``compile``), with validation off
    and denormals flushed, concatenated along ``dim``. With ``fill``, the estimates
    replace only the missing entries of x. Returned on the device of the input x."""
    home = x.device
    if not isinstance(compile, bool) and compile != "auto":
        raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
    x, mask = _check(programs, x, mask, num_samples)
    row_batch, sample_chunk = block_sizes(x.device, row_batch, sample_chunk, num_samples)
    weights = weights_and_values
    if imputation_compiles(compile, len(x) * num_samples * len(programs)):
        weights = CompiledWeights(min(row_batch, len(x)), min(sample_chunk, num_samples))
    if seed is not None:
        pyro.set_rng_seed(seed)
    with pyro.validation_enabled(False), flush_denormals():
        parts = [estimate(x[rows], mask[rows], rows, sample_chunk, weights)
                 for rows in (slice(start, start + row_batch)
                              for start in range(0, len(x), row_batch))]
    out = torch.cat(parts, dim)
    return (torch.where(mask, x, out) if fill else out).to(home)


@torch.no_grad()
def impute(program: Programs, x: torch.Tensor, mask: torch.Tensor, num_samples: int = 10_000,
           estimator: str = "mean", row_batch: int | None = None,
           sample_chunk: int | None = None, seed: int | None = None,
           y: torch.Tensor | None = None, ensemble: str = "pooled",
           compile: bool | str = False) -> torch.Tensor:
    """Single imputation: observed entries returned unchanged, missing ones filled.

    ``program``: one program, or an ensemble used as ``ensemble`` says ("pooled" or
    "equal", see the module docstring), with L = ``num_samples`` from each.

    ``y`` (N,): for a jointly supervised program, a known target (on the scale it was
    trained on); p(y | x^o, x^m_l) then enters the weights. With ``estimator="sample"``
    this estimates E[x^m | x^o, s, y]; "mean" averages the decoder means E[x^m | z_l], so
    it sees y (like s) only through which z_l it favours, not through the draw x^m_l.

    ``compile``: compute the weights with a compiled graph of the program (see the
    module docstring); "auto" from 20 million row-samples (rows x L x programs) on
    (``notmiwae.inference.settings.imputation_compiles``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    programs = _programs(program)
    groups = _groups(programs, ensemble)
    y = _known_target(programs[0], y, x)

    def estimate(xb, mb, rows, chunk, weights):
        yb = None if y is None else y[rows]
        per_group = [_snis(group, xb, mb, num_samples, chunk, VALUES[estimator], yb, weights)
                     for group in groups]
        return per_group[0] if len(groups) == 1 else torch.stack(per_group).mean(0)

    return _by_blocks(programs, x, mask, num_samples, row_batch, sample_chunk, seed,
                      estimate, fill=True, compile=compile)


def _known_target(program: NotMIWAE, y: torch.Tensor | None,
                  x: torch.Tensor) -> torch.Tensor | None:
    """A known target as an (N, 1) column on the program's device, checked."""
    if y is None:
        return None
    if program.regressor is None:
        raise ValueError("y given, but the program has no target (target=True)")
    if y.numel() != len(x):
        raise ValueError(f"y has {y.numel()} values for {len(x)} rows")
    return y.reshape(len(x), 1).to(program_device(program), x.dtype)


@torch.no_grad()
def effective_sample_size(program: Programs, x: torch.Tensor, mask: torch.Tensor,
                          num_samples: int = 10_000, row_batch: int | None = None,
                          sample_chunk: int | None = None, seed: int | None = None,
                          y: torch.Tensor | None = None, ensemble: str = "pooled",
                          compile: bool | str = False) -> torch.Tensor:
    """Kish's effective sample size of each row's importance weights, (N,):

        ESS = (sum_l w_l)^2 / sum_l w_l^2,

    from 1 (one sample carries all the weight) to L (equal weights); for an ensemble, of
    the pooled R x L weights, or for ``ensemble="equal"`` of the mixture's weights
    w~_rl / R, R^2 / sum_r 1 / ESS_r (as :func:`multiple_impute` draws). ``y`` as in
    :func:`impute`: with it, p(y | x) is in the weights. ``compile`` as in :func:`impute`.
    """
    programs = _programs(program)
    groups = _groups(programs, ensemble)
    y = _known_target(programs[0], y, x)

    def estimate(xb, mb, rows, chunk, weights):
        yb = None if y is None else y[rows]
        return _mixture_ess([_ess(group, xb, mb, num_samples, chunk, yb, weights)
                             for group in groups])

    return _by_blocks(programs, x, mask, num_samples, row_batch, sample_chunk, seed,
                      estimate, compile=compile)


def _ess(programs: tuple[NotMIWAE, ...], x: torch.Tensor, mask: torch.Tensor,
         num_samples: int, chunk: int, y: torch.Tensor | None = None,
         weights=weights_and_values) -> torch.Tensor:
    """(sum_l w_l)^2 / sum_l w_l^2 with running log-sum-exps over the chunks: (n,)."""
    log_sum = torch.full((len(x),), -math.inf, device=x.device)
    log_sum_sq = log_sum.clone()
    for log_w, _ in _weighted_chunks(programs, x, mask, num_samples, chunk,
                                     VALUES["nothing"], y, weights):
        log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, 0))
        log_sum_sq = torch.logaddexp(log_sum_sq, torch.logsumexp(2 * log_w, 0))
    return torch.exp(2 * log_sum - log_sum_sq)


@torch.no_grad()
def weight_overlap(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                   num_samples: int = 10_000, row_batch: int | None = None,
                   sample_chunk: int | None = None, seed: int | None = None, *,
                   y: torch.Tensor) -> torch.Tensor:
    """How much of each row's weight stays where it was when a known y enters, (N,):

        overlap = sum_l min(w~_l, w~^y_l),   w^y_l = w_l p(y | x^o, x^m_l),

    on the same L draws (1 - the total-variation distance of the two weightings): 1 when y
    leaves the normalised weights unchanged, 0 when it moves them onto other draws. Each
    block of rows keeps its L log-weights (L x rows floats) until both normalisers are known.
    """
    if y is None:
        raise ValueError("weight_overlap compares weights with and without y: give y")
    y = _known_target(program, y, x)
    return _by_blocks(
        (program,), x, mask, num_samples, row_batch, sample_chunk, seed,
        lambda xb, mb, rows, chunk, _: _overlap(program, xb, mb, num_samples, chunk, y[rows]))


def _overlap(program, x, mask, num_samples, chunk, y) -> torch.Tensor:
    """sum_l min(w~_l, w~^y_l) for a block of rows, from all L log-weights without and
    with log p(y | x^o, x^m_l): (n,)."""
    def log_p_y(trace):  # log p(y | x^o, x^m_l), (L_c, n); y is latent in these traces
        return trace.nodes["y"]["fn"].log_prob(y).sum(-1)

    chunks = list(_weighted_chunks((program,), x, mask, num_samples, chunk, log_p_y))
    log_w = torch.cat([log_w for log_w, _ in chunks])
    log_w_y = log_w + torch.cat([p for _, p in chunks])
    return torch.minimum(torch.softmax(log_w, 0), torch.softmax(log_w_y, 0)).sum(0)


@torch.no_grad()
def predict_target(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                   num_samples: int = 10_000, row_batch: int | None = None,
                   sample_chunk: int | None = None, seed: int | None = None,
                   y: torch.Tensor | None = None) -> torch.Tensor:
    """E[y | x^o, s] = sum_l w~_l f(x^o, x^m_l) for a jointly supervised program, (N,).

    The weights leave y out (it is unknown at prediction time): y stays a latent site the
    guide proposes from the model itself, so it adds nothing to them. A diagnostic, not a
    prediction: given ``y``, p(y | x^o, x^m_l) enters the weights, and the result,
    E[f(x^o, x^m) | x^o, s, y], shows how well the draws that y favours fit it.
    """
    if program.regressor is None:
        raise ValueError("the program has no target: build it with target=True")
    y = _known_target(program, y, x)
    y_hat = _by_blocks(
        (program,), x, mask, num_samples, row_batch, sample_chunk, seed,
        lambda xb, mb, rows, chunk, _: _snis((program,), xb, mb, num_samples, chunk,
                                             VALUES["target"], None if y is None else y[rows]))
    return y_hat[:, 0]


def _snis(programs, x, mask, num_samples, chunk, read, y=None,
          weights=weights_and_values) -> torch.Tensor:
    """sum_l w~_l value_l over all chunks of all ``programs`` (their weights pooled), with
    a running log-sum-exp: (n, F)."""
    log_total = torch.full((len(x),), -math.inf, device=x.device)
    acc = None
    for log_w, value in _weighted_chunks(programs, x, mask, num_samples, chunk, read, y,
                                         weights):
        if acc is None:
            acc = torch.zeros(value.shape[1:], device=x.device, dtype=value.dtype)
        new_total = torch.logaddexp(log_total, torch.logsumexp(log_w, 0))
        weights = torch.exp(log_w - new_total)  # w_l / (sum of all weights so far)
        acc = acc * torch.exp(log_total - new_total).unsqueeze(-1) \
            + torch.einsum("kn,knd->nd", weights, value)
        log_total = new_total
    return acc


@torch.no_grad()
def multiple_impute(program: Programs, x: torch.Tensor, mask: torch.Tensor, m: int = 5,
                    num_samples: int = 10_000, row_batch: int | None = None,
                    sample_chunk: int | None = None, seed: int | None = None,
                    return_ess: bool = False, ensemble: str = "pooled",
                    compile: bool | str = False,
                    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """m completed data sets, shape (m, N, D), by sampling importance resampling.

    For an ensemble of R programs: "pooled" draws from the R x L samples with their pooled
    weights; "equal" draws each imputation from a replica chosen uniformly, then within
    its L samples. Warns (:class:`LowEffectiveSampleSize`) when rows with a missing entry
    have weights of effective sample size below m; ``return_ess`` also returns each row's
    (N,), from the same weights (as :func:`effective_sample_size` computes it).
    ``compile`` as in :func:`impute`.
    """
    if isinstance(m, bool) or not isinstance(m, Integral) or m < 1:
        raise ValueError(f"m must be a whole number >= 1, got {m!r}")
    programs = _programs(program)
    groups = _groups(programs, ensemble)
    ess = []

    def estimate(xb, mb, rows, chunk, weights):
        drawn = [_sir(group, xb, mb, m, num_samples, chunk, weights) for group in groups]
        ess.append(_mixture_ess([row_ess for _, row_ess in drawn]))
        if len(groups) == 1:
            return drawn[0][0]
        which = torch.randint(len(groups), (1, m, len(xb), 1), device=xb.device)
        picks = torch.stack([p for p, _ in drawn])  # (R, m, n, D)
        return picks.gather(0, which.expand(1, *picks.shape[1:]))[0]

    draws = _by_blocks(programs, x, mask, num_samples, row_batch, sample_chunk, seed,
                       estimate, dim=1, fill=True, compile=compile)
    ess = torch.cat(ess).to(draws.device)
    incomplete = ~torch.as_tensor(mask).to(ess.device).bool().all(-1)  # rows drawn for
    _warn_low_ess(ess[incomplete], m, num_samples * len(programs))
    return (draws, ess) if return_ess else draws


def _warn_low_ess(ess: torch.Tensor, m: int, total: int) -> None:
    low = int((ess < m).sum())
    if m > 1 and low:
        warn(f"{low} of {len(ess)} rows with missing entries have an effective sample "
             f"size below the {m} draws asked (smallest {float(ess.min()):.1f} of {total} "
             "importance samples): their draws repeat a few samples and understate the "
             "spread; raise num_samples", LowEffectiveSampleSize)


def _sir(programs, x, mask, m, num_samples, chunk,
         weights=weights_and_values) -> tuple[torch.Tensor, torch.Tensor]:
    """m independent draws per row with probability w~_l, streamed over chunks, and the
    effective sample size of the weights: ((m, n, D), (n,)).

    Each draw keeps a current pick; a new chunk with total weight W_c replaces it with
    probability W_c / (W + W_c), by a pick drawn within the chunk: overall P(l) = w~_l.
    """
    n = len(x)
    log_total = torch.full((n,), -math.inf, device=x.device)
    log_total_sq = log_total.clone()
    picks = torch.zeros(m, n, x.shape[1], device=x.device, dtype=x.dtype)
    rows = torch.arange(n, device=x.device)
    for log_w, sample in _weighted_chunks(programs, x, mask, num_samples, chunk,
                                          VALUES["sample"], None, weights):
        log_chunk = torch.logsumexp(log_w, 0)
        new_total = torch.logaddexp(log_total, log_chunk)
        within = torch.multinomial(torch.softmax(log_w, 0).T, m, replacement=True)  # (n, m)
        candidates = sample[within.T, rows]  # (m, n, D)
        replace = torch.rand(m, n, device=x.device) < torch.exp(log_chunk - new_total)
        picks = torch.where(replace.unsqueeze(-1), candidates, picks)
        log_total = new_total
        log_total_sq = torch.logaddexp(log_total_sq, torch.logsumexp(2 * log_w, 0))
    return picks, torch.exp(2 * log_total - log_total_sq)
