"""The contract of each kind of part: one method to write, and the shapes it works on.

A part is an ``nn.Module`` written for ONE run and one batch of rows; plates, importance
samples and replicas are added around it by the program and the inference code. Subclass
the base of its kind (or just provide the same method); :func:`check_part` runs a new part
once on small inputs and names what is missing before any training starts.

======================  ==========================  =========================================
kind                    method to write             returns
======================  ==========================  =========================================
prior p(z)              ``forward()``               distribution, event shape (d_z,)
encoder q(z | x^o)      ``forward(x_filled)``       distribution, batch (...,), event (d_z,)
decoder p(x | z)        ``forward(z)``              distribution, batch shape (..., D)
missing model p(s | x)  ``forward(x, shift=None)``  logits of P(s_j = 1 | x), shape (..., D)
latent-mask network     ``forward(z_mask)``         shift mu_m(z_mask), shape (..., D)
regressor p(y | x)      ``forward(x)``              distribution, batch shape (..., 1)
======================  ==========================  =========================================

``x_filled`` is x with its missing entries set to 0; ``...`` stands for any leading batch
dimensions (particles, rows). A decoder used with a non-ignorable missing model must
draw x^m by reparameterization (``has_rsample = True``), so that the bound's gradient
reaches it through p(s | x).
"""

from __future__ import annotations

import inspect

import pyro.distributions as dist
import torch
from torch import nn


class Prior(nn.Module):
    """p(z). Write ``forward()`` returning a distribution with event shape (latent_dim,);
    set ``self.latent_dim``. Its ``log_prob`` enters the importance weights."""

    latent_dim: int

    def forward(self) -> dist.Distribution:
        raise NotImplementedError


class Encoder(nn.Module):
    """q(z | x^o). Write ``forward(x_filled)``: x (..., D) with missing entries 0, to a
    reparameterizable distribution with batch shape (...) and event shape (d_z,)."""

    def forward(self, x_filled: torch.Tensor) -> dist.Distribution:
        raise NotImplementedError


class Decoder(nn.Module):
    """p(x | z). Write ``forward(z)``: z (..., d_z) to a distribution with batch shape
    (..., D), one factor per feature. Set ``has_rsample = False`` if it cannot
    reparameterize (then only MIWAE, the ignorable model, can use it)."""

    has_rsample = True

    def forward(self, z: torch.Tensor) -> dist.Distribution:
        raise NotImplementedError


class MissingModel(nn.Module):
    """p(s | x). Write ``forward(x, shift=None)``: complete x (..., D) to the logits of
    P(s_j = 1 | x), s_j = 1 meaning observed. ``shift`` = mu_m(z_mask) (..., D) comes only
    in the masked not-MIWAE; the factory is then called with ``latent_mask=True``."""

    def forward(self, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class LatentMaskNetwork(nn.Module):
    """The masked not-MIWAE's z_mask: attributes ``prior`` (a :class:`Prior`) and
    ``encoder`` (an :class:`Encoder`), and ``forward(z_mask)`` giving the shift (..., D)."""

    prior: Prior
    encoder: Encoder

    def forward(self, z_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Regressor(nn.Module):
    """p(y | x) of a jointly supervised model. Write ``forward(x)``: complete x (..., D)
    to a distribution with batch shape (..., 1)."""

    def forward(self, x: torch.Tensor) -> dist.Distribution:
        raise NotImplementedError


KIND_NAMES = {"missing": "missing model"}


class PartError(ValueError):
    """A part does not keep its contract; the message says what is missing."""


def factory_takes(factory, *args, **kwargs) -> bool:
    """Whether ``factory(*args, **kwargs)`` is a valid call by its signature."""
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): assume it does
        return True
    return True


@torch.no_grad()
def check_part(kind: str, name: str, part: nn.Module, n_features: int, latent_dim: int,
               latent_mask: bool = False) -> nn.Module:
    """Run ``part`` once on zeros and check what it returns against its kind's contract."""
    label = f"{KIND_NAMES.get(kind, kind)} {name!r}"
    if not isinstance(part, nn.Module):
        raise PartError(f"{label} is a {type(part).__name__}, not an nn.Module")
    try:
        _CHECKS[kind](part, n_features, latent_dim, latent_mask, label)
    except PartError:
        raise
    except Exception as err:  # the part's own code failed on well-formed input
        raise PartError(f"{label} failed on inputs of the documented shapes "
                        f"(see notmiwae.models.parts): {type(err).__name__}: {err}") from err
    return part


def _distribution(out, label: str, call: str, batch: tuple, event: tuple) -> None:
    if not isinstance(out, torch.distributions.Distribution):
        raise PartError(f"{label}: {call} returned a {type(out).__name__}, not a distribution")
    shape = tuple(out.batch_shape + out.event_shape)
    if shape != batch + event or tuple(out.event_shape) != event:
        raise PartError(f"{label}: {call} gave batch {tuple(out.batch_shape)}, event "
                        f"{tuple(out.event_shape)}; expected batch {batch}, event {event}")


def _check_prior(part, d, d_z, _mask, label):
    _distribution(part(), label, "forward()", (), (d_z,))


def _check_decoder(part, d, d_z, _mask, label):
    _distribution(part(torch.zeros(3, d_z)), label, f"forward(z of shape (3, {d_z}))",
                  (3, d), ())


def _check_missing(part, d, _d_z, latent_mask, label):
    x = torch.zeros(3, d)
    args = (x, torch.zeros(3, d)) if latent_mask else (x,)
    if latent_mask and not _accepts_shift(part):
        raise PartError(f"{label} has no forward(x, shift): it cannot take latent_mask=True")
    logits = part(*args)
    if not torch.is_tensor(logits) or logits.shape != (3, d):
        got = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise PartError(f"{label}: forward(x of shape (3, {d})) gave {got}; expected the "
                        f"logits of P(s_j = 1 | x), shape (3, {d})")


def _accepts_shift(part: nn.Module) -> bool:
    try:
        inspect.signature(part.forward).bind(None, None)
    except TypeError:
        return False
    return True


def _check_encoder(part, d, d_z, _mask, label):
    _distribution(part(torch.zeros(3, d)), label, f"forward(x of shape (3, {d}))", (3,),
                  (d_z,))


def _check_regressor(part, d, _d_z, _mask, label):
    _distribution(part(torch.zeros(3, d)), label, f"forward(x of shape (3, {d}))", (3, 1), ())


_CHECKS = {"prior": _check_prior, "decoder": _check_decoder, "missing": _check_missing,
           "encoder": _check_encoder, "regressor": _check_regressor}
