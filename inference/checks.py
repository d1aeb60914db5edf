"""Posterior predictive checks: replicate (x, s) from the fitted model and compare.

For each row, z (with z_mask in a masked not-MIWAE) is drawn from the importance-weighted
posterior (resampling L proposals z_l ~ q(z | x^o) with weights w~_l), then
``pyro.infer.Predictive`` runs the model with its observations released
(``poutine.uncondition``): x_rep ~ p(x | z), s_rep ~ p(s | x_rep [, z_mask]).
If the model fits, the replicated data look like the data: the same missing rate per
feature, the same distribution of the *observed* values, the same correlations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyro
import torch
from pyro import poutine
from pyro.infer import Predictive

from notmiwae.models.program import NotMIWAE

from .data import masked_data
from .device import program_device
from .importance import log_importance_weights


@torch.no_grad()
def replicate(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor, num_replicates: int = 20,
              num_samples: int = 200, row_batch: int = 512,
              seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replicated data and masks, each (num_replicates, N, D); mask True = observed."""
    if seed is not None:
        pyro.set_rng_seed(seed)
    x, mask = masked_data(x, mask)
    device = program_device(program)
    x, mask = x.to(device), mask.to(device)
    xs, ss = [], []
    # unregistered: Pyro's param store would tag the parameters with weak references,
    # and a tagged program no longer pickles.
    with pyro.validation_enabled(False), program.unregistered():
        for start in range(0, len(x), row_batch):
            rows = slice(start, start + row_batch)
            latents = _posterior_latents(program, x[rows], mask[rows], num_replicates,
                                         num_samples)
            predictive = Predictive(poutine.uncondition(program.model), latents,
                                    return_sites=["x", "s"], parallel=True)
            sites = predictive(x[rows], mask[rows])
            xs.append(sites["x"].reshape(num_replicates, -1, x.shape[1]))
            s = sites.get("s")
            ss.append(torch.ones_like(xs[-1], dtype=torch.bool) if s is None
                      else s.reshape(xs[-1].shape).bool())
    return torch.cat(xs, 1), torch.cat(ss, 1)


def _posterior_latents(program, x, mask, num_replicates, num_samples) -> dict:
    """(S, n, 1, d) draws of each per-row latent (z, and z_mask in a masked not-MIWAE) by
    sampling importance resampling: one index l per draw picks them jointly, (z_l, z_mask_l)."""
    log_w, trace = log_importance_weights(program, x, mask, num_samples)
    pick = torch.multinomial(torch.softmax(log_w, 0).T, num_replicates, replacement=True).T
    rows = torch.arange(len(x), device=x.device)
    return {name: trace.nodes[name]["value"][pick, rows] for name in program.guide.encoders}


def summary_table(data: np.ndarray, x_rep: np.ndarray, s_rep: np.ndarray,
                  names: list[str]) -> pd.DataFrame:
    """Per feature: missing rate, mean and sd of the observed values, data vs replicated.

    ``data`` (N, D) with NaN for missing; ``x_rep``, ``s_rep`` (S, N, D).
    """
    observed = ~np.isnan(data)
    rep_obs = np.where(s_rep, x_rep, np.nan)
    rate_rep = 1 - s_rep.mean(axis=1)  # (S, D)
    with warnings.catch_warnings():
        # A feature the replicates never observe has no observed mean or sd: NaN in the
        # table, without numpy's warnings about it (other warnings still show).
        for message in ("Mean of empty slice", "Degrees of freedom <= 0 for slice"):
            warnings.filterwarnings("ignore", message, RuntimeWarning)
        table = pd.DataFrame({
            "feature": names,
            "missing_rate": 1 - observed.mean(axis=0),
            "missing_rate_rep": rate_rep.mean(axis=0),
            "missing_rate_rep_q05": np.quantile(rate_rep, 0.05, axis=0),
            "missing_rate_rep_q95": np.quantile(rate_rep, 0.95, axis=0),
            "observed_mean": np.nanmean(data, axis=0),
            "observed_mean_rep": np.nanmean(rep_obs, axis=(0, 1)),
            "observed_sd": np.nanstd(data, axis=0),
            "observed_sd_rep": np.nanstd(rep_obs, axis=(0, 1)),
        })
    return table


def correlation_table(data: np.ndarray, x_rep: np.ndarray, s_rep: np.ndarray,
                      names: list[str]) -> pd.DataFrame:
    """Pairwise correlations of observed values (pairwise complete), data vs replicated."""
    frame = pd.DataFrame(data, columns=names)
    rep = pd.DataFrame(np.where(s_rep, x_rep, np.nan).reshape(-1, data.shape[1]), columns=names)
    c_data, c_rep = frame.corr(), rep.corr()
    rows = [(a, b, c_data.loc[a, b], c_rep.loc[a, b])
            for i, a in enumerate(names) for b in names[i + 1:]]
    return pd.DataFrame(rows, columns=["feature_a", "feature_b", "corr", "corr_rep"])


# How the figures look, apart from what they show (both are pinned by the tests).
TITLE = {"fontsize": 9}
LEGEND = {"fontsize": 7}
POINTS = {"s": 4, "alpha": 0.5}
DIAGONAL = {"color": "k", "lw": 0.8}
CENTRED = {"x": 0.5, "y": 0.5, "ha": "center"}


def plot_histograms(data: np.ndarray, x_rep: np.ndarray, s_rep: np.ndarray,
                    names: list[str], path: str | Path) -> None:
    """Each feature: observed data vs replicated observed values vs replicated missing ones."""
    plt = pyplot()
    fig, axes = _grid(plt, len(names))
    for j, ax in enumerate(axes[:len(names)]):
        col = data[:, j]
        bins = np.histogram_bin_edges(np.concatenate([col[~np.isnan(col)],
                                                      x_rep[..., j].ravel()]), 30)
        ax.hist(col[~np.isnan(col)], bins, density=True, alpha=0.5, label="observed data")
        ax.hist(x_rep[..., j][s_rep[..., j]], bins, density=True, histtype="step", lw=1.5,
                label="replicated, observed")
        if (~s_rep[..., j]).any():
            ax.hist(x_rep[..., j][~s_rep[..., j]], bins, density=True, histtype="step",
                    ls="--", label="replicated, missing")
        ax.set_title(names[j], **TITLE)
    axes[0].legend(**LEGEND)
    _save(plt, fig, axes, len(names), path)


@torch.no_grad()
def learned_observed_probability(program: NotMIWAE, x: torch.Tensor,
                                 z_mask: torch.Tensor | None = None,
                                 num_draws: int = 500) -> torch.Tensor:
    """P(s = 1 | x) under the learned missing model, (N, D).

    For a masked not-MIWAE the mechanism also depends on z_mask; it is averaged over the
    prior: P(s = 1 | x) = E_{z_mask ~ N(0, I)} sigmoid(logit(x, mu_m(z_mask))), estimated
    with the draws ``z_mask`` (S, d_mask), by default ``num_draws`` from the prior.
    """
    if program.latent_mask is None:
        return torch.sigmoid(program.missingness(x))
    if z_mask is None:
        z_mask = program.latent_mask.prior().sample((num_draws,))
    shift = program.latent_mask(z_mask).unsqueeze(-2)  # (S, 1, D)
    return torch.sigmoid(program.missingness(x.expand(len(z_mask), *x.shape), shift)).mean(0)


def plot_missingness_curves(program: NotMIWAE, names: list[str], path: str | Path,
                            to_original: Callable[[int, np.ndarray], np.ndarray] | None = None,
                            true_curve: Callable[[int, np.ndarray], np.ndarray] | None = None,
                            grid: np.ndarray | None = None,
                            truth: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """P(s_j = 1 | x) as x_j varies, the other features at their mean (0, standardised).

    ``truth`` = (complete data, mask), both (N, D) on the shown scale, adds the mechanism
    the data show: the fraction of rows observed in bins of the true x_j.
    """
    if program.missingness is None:
        raise ValueError("the model has an ignorable missing process: no curve to draw")
    plt = pyplot()
    grid = np.linspace(-3, 3, 121) if grid is None else grid
    d = len(names)
    device = program_device(program)
    fig, axes = _grid(plt, d)
    z_mask = None  # one set of z_mask draws for every feature's curve
    if program.latent_mask is not None:
        z_mask = program.latent_mask.prior().sample((500,))
    for j, ax in enumerate(axes[:d]):
        x = torch.zeros(len(grid), d, device=device)
        x[:, j] = torch.as_tensor(grid, dtype=x.dtype)
        prob = learned_observed_probability(program, x, z_mask)[:, j].cpu().numpy()
        shown = grid if to_original is None else to_original(j, grid)
        ax.plot(shown, prob, label="learned")
        if true_curve is not None:
            ax.plot(shown, true_curve(j, grid), ls="--", label="true")
        if truth is not None:
            centres, observed = observed_fraction(truth[0][:, j], truth[1][:, j])
            ax.plot(centres, observed, "o", ms=3, label="data (binned truth)")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(names[j], **TITLE)
    axes[0].set_ylabel("P(observed)")
    axes[0].legend(**LEGEND)
    _save(plt, fig, axes, d, path)


def observed_fraction(values: np.ndarray, observed: np.ndarray,
                      bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The empirical P(s = 1 | x): the fraction observed in equal-width bins of x.

    Returns the centres and fractions of the bins that hold at least 5 rows.
    """
    edges = np.linspace(values.min(), values.max(), bins + 1)
    which = np.clip(np.digitize(values, edges) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    hits = np.bincount(which, weights=observed.astype(float), minlength=bins)
    keep = counts >= 5
    centres = (edges[:-1] + edges[1:]) / 2
    return centres[keep], hits[keep] / counts[keep]


def plot_imputed_vs_true(truth: np.ndarray, imputed: np.ndarray, mask: np.ndarray,
                         names: list[str], path: str | Path) -> None:
    """Scatter of imputed against true values, missing entries only, per feature."""
    plt = pyplot()
    fig, axes = _grid(plt, len(names))
    for j, ax in enumerate(axes[:len(names)]):
        miss = ~mask[:, j]
        if miss.any():
            lo, hi = truth[miss, j].min(), truth[miss, j].max()
            ax.scatter(truth[miss, j], imputed[miss, j], **POINTS)
            ax.plot([lo, hi], [lo, hi], **DIAGONAL)
        else:
            ax.axis("off")
            ax.text(s="no missing values", transform=ax.transAxes, **CENTRED)
        ax.set_title(names[j], **TITLE)
    axes[0].set_xlabel("true")
    axes[0].set_ylabel("imputed")
    _save(plt, fig, axes, len(names), path)


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(plt, n: int):
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    return fig, axes.ravel()


def _save(plt, fig, axes, n: int, path) -> None:
    for ax in axes[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A plain markdown table (no extra dependency)."""
    def fmt(v):
        return f"{v:.{digits}f}" if isinstance(v, float | np.floating) else str(v)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"
