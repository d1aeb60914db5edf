"""A scikit-learn imputer around the not-MIWAE programs.

    >>> imputer = NotMIWAEImputer(missing="selfmasking_known", iterations=20_000)
    >>> X_filled = imputer.fit_transform(X)          # NaN = missing; observed values kept
    >>> X_new_filled = imputer.transform(X_new)      # amortized: no retraining
    >>> completed = imputer.sample(X, m=5)           # multiple imputation

Columns are standardised internally with the mean and standard deviation of their
observed values; results come back on the original scale.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
import pyro.util
import scipy.sparse
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from notmiwae.models.program import NotMIWAE
from notmiwae.models.registry import ModelConfig, build_model

from .checks import (
    correlation_table,
    plot_histograms,
    plot_imputed_vs_true,
    plot_missingness_curves,
    replicate,
    summary_table,
    to_markdown,
)
from .device import default_device
from .imputation import ENSEMBLES, ESTIMATORS, impute, multiple_impute
from .tables import DataError, atomic_path, write_csv, write_text
from .training import INITS, TrainConfig, fit, read_checkpoint, save_checkpoint
from .user_warnings import warn

_COUNT = [Interval(Integral, 1, None, closed="left")]


MIN_ROWS = 10  # fit refuses fewer rows with an observed value
FEW_ROWS = 100  # ... and warns below this many
AUTO_PROGRESS = 1000  # verbose="auto" shows a bar from this many iterations on
TOO_LARGE = 1e150  # |values| beyond this overflow the standardisation
IDENTIFIER_NAMES = {"id", "key", "name", "index", "row", "code", "label", "uuid"}


def as_float_array(X: ArrayLike) -> np.ndarray:
    """X as a float64 (N, D) array with NaN for missing; a clear error for anything else."""
    X_in = X
    if isinstance(X, pd.DataFrame):
        _check_frame(X)
        X = X.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if scipy.sparse.issparse(X):
        raise TypeError("X is sparse; sparse input is not supported: pass a dense array "
                        "(X.toarray()) with NaN for missing values")
    try:
        array = np.asarray(X)
        complex_values = np.iscomplexobj(array)  # float() would drop the imaginary parts
        if not complex_values:
            array = array.astype(float)
    except TypeError as err:
        raise TypeError(f"X must be numeric with NaN for missing values: {err}") from None
    except (ValueError, OverflowError) as err:
        raise DataError(f"X must be numeric with NaN for missing values: {err}") from None
    if complex_values:
        raise DataError("Complex data not supported: X holds complex numbers")
    if array.ndim != 2:
        raise DataError(f"X must be 2-dimensional (rows x features), got shape "
                        f"{array.shape}; Reshape your data: X.reshape(-1, 1) if it is "
                        "one feature, X.reshape(1, -1) if it is one row")
    for axis, what in ((0, "row"), (1, "feature")):
        if array.shape[axis] == 0:
            raise DataError(f"X has 0 {what}(s) (shape={array.shape}) while a minimum "
                            f"of 1 is required: at least one row and one column")
    _check_finite(array, X_in)
    return array


def _check_frame(X: pd.DataFrame) -> None:
    """Unique column names, numbers (or NaN) in every column, nothing complex."""
    duplicated = X.columns[X.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"duplicate column name(s) {sorted({str(c) for c in duplicated})}; "
                        "every column needs its own name")
    for column in X.columns:
        if pd.api.types.is_complex_dtype(X[column]):
            raise DataError(f"Complex data not supported: column {column!r} holds "
                            "complex numbers")
        values = pd.to_numeric(X[column], errors="coerce")
        bad = values.isna() & X[column].notna()
        if bad.any():
            row = X.index[bad.to_numpy().argmax()]
            raise DataError(f"column {column!r} holds a non-numeric value "
                            f"{X[column][row]!r} (row {row!r}); "
                            + _non_numeric_advice(column, X[column]))


def _non_numeric_advice(column: object, values: pd.Series) -> str:
    """What to do with a non-numeric column: an identifier becomes the index."""
    present = values.dropna()
    looks_like_id = (str(column).strip().lower() in IDENTIFIER_NAMES
                     or (len(present) == len(values) and present.is_unique))
    if looks_like_id:
        return (f"it looks like a row identifier: make it the index (--index-col "
                f"{column} with the notmiwae command, X.set_index({column!r}) in Python)")
    return "only numbers can be imputed: encode the column as numbers or drop it"


def _check_finite(array: np.ndarray, X: object) -> None:
    """No infinite value, and none so large that standardising it overflows."""
    for bad, what in ((np.isinf(array), "an infinite value"),
                      (np.abs(np.nan_to_num(array)) > TOO_LARGE,
                       f"a value too large to standardise (beyond +-{TOO_LARGE:.0e}):")):
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            value = float(array[row, col])
            if isinstance(X, pd.DataFrame):
                row, col = X.index[row], X.columns[col]
            raise DataError(f"column {col!r} holds {what} {value!r} (row {row!r}); "
                            "use NaN for a missing value")


IMPUTER_FORMAT = 1  # the layout of a saved imputer; bumped when it changes


def _version() -> str:
    from notmiwae import __version__

    return __version__


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _check_saved_imputer(path: str | Path) -> None:
    """Refuse, naming the file, anything but a readable imputer of this format."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no saved imputer at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, unpickling refused, ...
        raise ValueError(f"{path} is not a readable saved imputer ({_first_line(err)})") \
            from None
    if not isinstance(blob, dict) or "model_config" not in blob:
        raise ValueError(f"{path} is not a notmiwae-pyro checkpoint")
    if "imputer_params" not in blob:
        raise ValueError(f"{path} is a model checkpoint, not a saved NotMIWAEImputer")
    saved = blob.get("imputer_format", 1)
    if saved != IMPUTER_FORMAT:
        raise ValueError(f"{path} was saved by notmiwae {blob.get('version', 'unknown')} "
                         f"(format {saved}); this is notmiwae {_version()}, which reads "
                         f"format {IMPUTER_FORMAT}: fit the imputer again with this version")


def _rebuilt(config: ModelConfig, state: dict, device: str | None) -> NotMIWAE:
    """A program built from ``config`` with the saved ``state``, on ``device``."""
    program = build_model(config).to(default_device(device))
    program.load_state_dict(state)
    return program.eval()


def _keeps_global_random_state(method):
    """Run ``method`` seeded by ``random_state`` without touching the caller's global
    Python, NumPy and torch (CPU) generators: their state is restored afterwards."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        state = pyro.util.get_rng_state()
        try:
            return method(*args, **kwargs)
        finally:
            pyro.util.set_rng_state(state)
    return wrapper


class NotMIWAEImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing values (NaN) with a not-MIWAE (or MIWAE) trained on the data.

    Columns are standardised by the mean and sd of their observed values; results come
    back on the original scale, observed values exactly as given.

    Parameters
    ----------
    missing : str, default="selfmasking_known"
        The missing process p(s | x): "ignorable" (MIWAE), "selfmasking",
        "selfmasking_known", "linear", "nonlinear", or a registered name.
    decoder : str, default="gaussian"
        p(x | z): "gaussian", "studentt", "bernoulli", "linear-gaussian" (PPCA-like),
        "factor-analysis" (linear, one scale per feature), "gaussian-shared-scale" and
        "gaussian-feature-scale" (the deep mean, one scale free of z for all features or
        per feature).
    prior : str, default="normal"
        p(z): "normal", or a registered name.
    latent_mask : bool, default=False
        The masked not-MIWAE: a second latent z_mask acting on the mask only.
    latent_dim : int or None, default=None
        Dimension of z; None gives n_features - 1.
    hidden : int, default=128
        Units of each of the two tanh layers of the encoder and decoder.
    iterations : int, default=20_000
        Adam steps (the paper's protocol uses 100,000).
    batch_size : int, default=16
        Rows per step.
    num_particles : int, default=20
        K, the importance samples of the bound.
    learning_rate : float, default=1e-3
        Adam's step size.
    compile : bool or "auto", default="auto"
        Train with the compiled step and impute with compiled weights
        (``notmiwae.inference.compiled``, ``compiled_imputation``): the same steps and
        draws, faster, after 10 to 90 s of compiling for training and 2 to 8 s for
        imputation (once per replica, estimator and block size, for as long as the
        imputer lives); "auto" compiles training from 5,000 iterations on
        (``TrainConfig.compile``) and imputations from 20 million row-samples (rows x
        ``num_samples`` x replicas) on.
    init : {"torch", "glorot", "glorot-missing"}, default="torch"
        PyTorch's initialisation, the paper's TensorFlow one (Glorot uniform, see
        ``notmiwae.models.networks.glorot_``), or that for the missing model only.
    num_samples : int, default=1_000
        L, the importance samples of each imputation.
    estimator : {"mean", "sample"}, default="mean"
        "mean": sum_l w~_l E[x^m | z_l] (the paper's); "sample": sum_l w~_l x^m_l.
    device : str or None, default=None
        "cpu" or "cuda"; None takes the GPU when PyTorch sees one.
    random_state : int or None, default=0
        Seeds training and every imputation, so they repeat exactly; None draws a fresh
        seed (kept in ``seed_``). The global Python, NumPy and torch generators are left
        as they were either way.
    verbose : bool or "auto", default="auto"
        A progress bar while training; "auto" shows it from 1,000 iterations on.
    replicas : int, default=1
        Train R replicas at once (seeds ``seed_`` .. ``seed_ + R - 1``, as one program,
        ``notmiwae.inference.replicas``) and impute with all of them: an ensemble.
    ensemble : {"pooled", "equal"}, default="pooled"
        How R > 1 replicas impute (``notmiwae.inference.imputation``): "pooled" normalises
        the R x L importance weights together, a per-row Bayesian model average; "equal"
        averages the replicas' own imputations (``sample``: each draw from a replica
        chosen uniformly).

    Attributes
    ----------
    program_ : NotMIWAE
        The trained Pyro program (with R > 1 replicas, the first).
    programs_ : list of NotMIWAE
        All R trained replicas, ``programs_[0] is program_``.
    model_config_ : ModelConfig
        What rebuilds it (saved with it).
    mean_, scale_ : ndarray of shape (n_features_in_,)
        The standardisation of each column (a constant column is only centred).
    seed_ : int
        The seed training used.
    history_ : ndarray of shape (iterations,), or (iterations, R) with R > 1 replicas
        The bound per iteration (mean over the minibatch rows).
    train_seconds_ : float
        Seconds of training.
    n_features_in_ : int
        Number of features seen in ``fit``; ``feature_names_in_`` their names, for a
        DataFrame with string column names.

    Examples
    --------
    >>> from notmiwae import NotMIWAEImputer
    >>> from notmiwae.experiments.datasets import load_dataset
    >>> from notmiwae.experiments.mechanisms import paper_mnar
    >>> data = load_dataset("banknote")
    >>> X = data.where(paper_mnar(data.to_numpy()))        # NaN = missing
    >>> imputer = NotMIWAEImputer(iterations=200, num_samples=50, verbose=False)
    >>> filled = imputer.fit_transform(X)
    >>> bool((filled[X.notna().to_numpy()] == X.to_numpy()[X.notna().to_numpy()]).all())
    True
    """

    _parameter_constraints: dict = {
        "missing": [str], "decoder": [str], "prior": [str],  # checked by the registry
        "latent_mask": ["boolean"],
        "latent_dim": [Interval(Integral, 1, None, closed="left"), None],
        "hidden": _COUNT, "iterations": _COUNT, "batch_size": _COUNT,
        "num_particles": _COUNT, "num_samples": _COUNT,
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions(set(INITS))], "compile": ["boolean", StrOptions({"auto"})],
        "estimator": [StrOptions(set(ESTIMATORS))],
        "device": [str, torch.device, None],
        "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both"), None],
        "verbose": ["verbose", StrOptions({"auto"})],
        "replicas": _COUNT, "ensemble": [StrOptions(set(ENSEMBLES))],
    }

    def __init__(self, missing: str = "selfmasking_known", decoder: str = "gaussian",
                 prior: str = "normal", latent_mask: bool = False,
                 latent_dim: int | None = None, hidden: int = 128,
                 iterations: int = 20_000, batch_size: int = 16, num_particles: int = 20,
                 learning_rate: float = 1e-3, init: str = "torch", num_samples: int = 1_000,
                 estimator: str = "mean", device: str | None = None,
                 random_state: int | None = 0, verbose: bool | str = "auto",
                 compile: bool | str = "auto", replicas: int = 1,
                 ensemble: str = "pooled") -> None:
        self.missing = missing
        self.decoder = decoder
        self.prior = prior
        self.latent_mask = latent_mask
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.iterations = iterations
        self.batch_size = batch_size
        self.num_particles = num_particles
        self.learning_rate = learning_rate
        self.init = init
        self.compile = compile
        self.num_samples = num_samples
        self.estimator = estimator
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.replicas = replicas
        self.ensemble = ensemble

    # -- fitting ---------------------------------------------------------------------------
    @_keeps_global_random_state
    def fit(self, X: ArrayLike, y: object = None, *, snapshot: str | Path | None = None,
            snapshot_every: int = 5000) -> NotMIWAEImputer:
        """Standardise X's columns by their observed values and train the model on X
        (NaN = missing); ``y`` is ignored.

        ``snapshot``: a file where the training state is saved every ``snapshot_every``
        iterations and on Ctrl-C; if it exists, training resumes from it and ends with
        the parameters of an uninterrupted run. Ctrl-C raises
        :class:`~notmiwae.inference.stopping.TrainingInterrupted` (a KeyboardInterrupt), a
        bound that is no longer finite
        :class:`~notmiwae.inference.stopping.TrainingDiverged`.
        """
        self._validate_params()
        default_device(self.device)  # an unknown or unavailable device fails here
        ModelConfig(n_features=1, decoder=self.decoder, missing=self.missing,
                    prior=self.prior)  # unknown parts are named before the data is read
        values = self._validate(X, reset=True)
        self._check_trainable(values)
        self.mean_ = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
        # A constant column (sd 0, or too small to divide by) is only centred.
        self.scale_ = np.where(scale > np.finfo(float).tiny, scale, 1.0)
        self.model_config_ = ModelConfig(n_features=values.shape[1], latent_dim=self.latent_dim,
                                         decoder=self.decoder, missing=self.missing,
                                         prior=self.prior, hidden=self.hidden,
                                         latent_mask=self.latent_mask)
        self.seed_ = self._seed()
        train = TrainConfig(iterations=self.iterations, batch_size=self.batch_size,
                            num_particles=self.num_particles,
                            learning_rate=self.learning_rate, seed=self.seed_,
                            init=self.init, compile=self.compile)
        x, mask = self._tensors(values)
        result = fit(self.model_config_, x, mask, train, device=self.device,
                     progress=self._progress(), snapshot=snapshot,
                     snapshot_every=snapshot_every, replicas=self.replicas)
        self.programs_ = [result.replica(r) for r in range(self.replicas)]
        self.program_ = self.programs_[0]
        self.history_ = result.history
        self.train_seconds_ = result.seconds
        return self

    def _check_trainable(self, values: np.ndarray) -> None:
        """Every column observed somewhere, and enough rows to learn from."""
        observed = ~np.isnan(values)
        empty = np.flatnonzero(~observed.any(axis=0))
        if empty.size:
            raise DataError(f"column(s) {self._names(empty)} have no observed value")
        rows = int(observed.any(axis=1).sum())
        if rows < MIN_ROWS:
            raise DataError(f"{rows} row(s) with an observed value "
                            f"(n_samples={rows}); at least {MIN_ROWS} are needed to "
                            "learn from")
        if rows < FEW_ROWS:
            warn(f"only {rows} rows with an observed value: with fewer than {FEW_ROWS} "
                 "the model learns little, and imputations lean on its prior")

    def _progress(self) -> bool:
        """Show a progress bar: ``verbose``, or for "auto" when training is long."""
        if self.verbose == "auto":
            return self.iterations >= AUTO_PROGRESS
        return bool(self.verbose)

    # -- imputing --------------------------------------------------------------------------
    @_keeps_global_random_state
    def transform(self, X: ArrayLike) -> np.ndarray:
        """X with every NaN replaced by its imputation; observed values returned as given."""
        check_is_fitted(self, "program_")
        values = self._validate(X, reset=False)
        if not np.isnan(values).any():  # nothing to impute
            return values
        x, mask = self._tensors(values)
        filled = impute(self.programs_, x, mask, self.num_samples, self.estimator,
                        seed=self._seed(), ensemble=self.ensemble,
                        compile=self.compile)
        return self._original_scale(values, filled)

    @_keeps_global_random_state
    def sample(self, X: ArrayLike, m: int = 5) -> list:
        """m completed data sets (multiple imputation by sampling importance resampling;
        with replicas, as ``ensemble`` says). Warns
        (``notmiwae.inference.imputation.LowEffectiveSampleSize``) when rows' importance
        weights cannot give m distinct draws: raise ``num_samples`` then."""
        check_is_fitted(self, "program_")
        values = self._validate(X, reset=False)
        if isinstance(m, bool) or not isinstance(m, Integral) or m < 1:
            raise ValueError(f"m must be a whole number >= 1, got {m!r}")
        if np.isnan(values).any():
            x, mask = self._tensors(values)
            draws = multiple_impute(self.programs_, x, mask, m, self.num_samples,
                                    seed=self._seed(), ensemble=self.ensemble,
                                    compile=self.compile)
            completed = [self._original_scale(values, d) for d in draws]
        else:  # nothing to impute: m copies
            completed = [values.copy() for _ in range(m)]
        if isinstance(X, pd.DataFrame):
            return [pd.DataFrame(c, index=X.index, columns=X.columns) for c in completed]
        return completed

    @_keeps_global_random_state
    def check(self, X: ArrayLike, out_dir: str | Path, X_true: ArrayLike | None = None,
              num_replicates: int = 20,
              true_curve: Callable[[int, np.ndarray], np.ndarray] | None = None
              ) -> pd.DataFrame:
        """Posterior predictive checks on X, written to ``out_dir``; returns the summary.

        Writes summary.csv/.md (missing rate, observed mean and sd, data vs replicated),
        correlations.csv, histograms.png, missingness.png (the learned P(s_j = 1 | x_j),
        with ``true_curve(j, x_standardised)`` when given, and the fraction observed in
        bins of the true values when ``X_true``, the complete data, is known) and then
        imputed_vs_true.png too. With replicas, the checks replicate data from the first
        (``program_``); imputed_vs_true.png shows the ensemble's imputations.
        """
        check_is_fitted(self, "program_")
        values = self._validate(X, reset=False)
        truth = None if X_true is None else self._check_truth(X_true, values)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        x, mask = self._tensors(values)
        x_rep, s_rep = replicate(self.program_, x, mask, num_replicates, seed=self._seed())
        x_rep = x_rep.cpu().double().numpy() * self.scale_ + self.mean_
        s_rep = s_rep.cpu().numpy()
        names = [str(n) for n in self.get_feature_names_out()]
        summary = summary_table(values, x_rep, s_rep, names)
        write_csv(summary, out / "summary.csv", index=False)
        write_text(to_markdown(summary), out / "summary.md")
        write_csv(correlation_table(values, x_rep, s_rep, names), out / "correlations.csv",
                  index=False)
        with atomic_path(out / "histograms.png") as tmp:
            plot_histograms(values, x_rep, s_rep, names, tmp)
        if self.program_.missingness is not None:
            with atomic_path(out / "missingness.png") as tmp:
                plot_missingness_curves(
                    self.program_, names, tmp,
                    to_original=lambda j, g: g * self.scale_[j] + self.mean_[j],
                    true_curve=true_curve,
                    truth=None if truth is None else (truth, ~np.isnan(values)))
        if truth is not None:
            imputed = np.asarray(self.transform(X), dtype=float)  # also under set_output
            with atomic_path(out / "imputed_vs_true.png") as tmp:
                plot_imputed_vs_true(truth, imputed, ~np.isnan(values), names, tmp)
        return summary

    def _check_truth(self, X_true: ArrayLike, values: np.ndarray) -> np.ndarray:
        """The complete data as an array: shaped like X, no NaN, equal to X where X is
        observed (rows and columns in the same order)."""
        truth = as_float_array(X_true)
        if truth.shape != values.shape or np.isnan(truth).any():
            raise ValueError(f"X_true must be complete and shaped like X {values.shape}, "
                             f"got shape {truth.shape}"
                             + (" with missing values" if np.isnan(truth).any() else ""))
        observed = ~np.isnan(values)
        differ = observed & ~np.isclose(truth, np.where(observed, values, 0.0), rtol=1e-6)
        if differ.any():
            row, col = (int(i) for i in np.argwhere(differ)[0])
            raise ValueError(f"X_true differs from X where X is observed: row {row}, column "
                             f"{self._names([col])[0]!r} ({truth[row, col]!r} vs "
                             f"{values[row, col]!r}); are rows and columns in the same order?")
        return truth

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Parameters, fitted scaling and network weights, loadable with :meth:`load`;
        written whole or not at all."""
        check_is_fitted(self, "program_")
        names = getattr(self, "feature_names_in_", None)
        output = getattr(self, "_sklearn_output_config", {}).get("transform")
        with atomic_path(path) as tmp:
            save_checkpoint(str(tmp), self.program_, self.model_config_, extra={
                "imputer_format": IMPUTER_FORMAT, "version": _version(),
                "imputer_params": self.get_params(),
                "mean": torch.as_tensor(self.mean_), "scale": torch.as_tensor(self.scale_),
                "feature_names": None if names is None else [str(n) for n in names],
                "history": torch.as_tensor(self.history_), "seed": self.seed_,
                "output": output,
                "replica_states": [p.state_dict() for p in self.programs_[1:]]})

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> NotMIWAEImputer:
        """An imputer saved with :meth:`save`, ready to transform (custom parts it uses
        must be registered again first, see ``notmiwae.models.registry.register``).
        ``set_output(transform=...)`` is kept. A file of another format or not readable as
        an imputer is refused with a ValueError naming it."""
        _check_saved_imputer(path)
        try:
            program, config, blob = read_checkpoint(str(path), device)
            others = [_rebuilt(config, state, device)
                      for state in blob.get("replica_states", [])]
        except (RuntimeError, KeyError, TypeError) as err:  # weights that do not fit
            raise ValueError(f"{path}: the saved weights do not fit the model its "
                             f"configuration builds ({_first_line(err)})") from None
        imputer = cls(**{**blob["imputer_params"], "device": device})
        imputer.model_config_, imputer.program_ = config, program
        imputer.programs_ = [program, *others]
        imputer.mean_ = blob["mean"].cpu().numpy()
        imputer.scale_ = blob["scale"].cpu().numpy()
        imputer.history_ = blob["history"].cpu().numpy()
        imputer.seed_ = blob.get("seed", imputer.random_state)
        imputer.n_features_in_ = imputer.model_config_.n_features
        if len(imputer.mean_) != imputer.n_features_in_:
            raise ValueError(f"{path}: scaling of {len(imputer.mean_)} features for a model "
                             f"of {imputer.n_features_in_}; the file is damaged")
        if blob["feature_names"] is not None:
            imputer.feature_names_in_ = np.asarray(blob["feature_names"], dtype=object)
        if blob.get("output") is not None:
            imputer.set_output(transform=blob["output"])
        return imputer

    # -- helpers ---------------------------------------------------------------------------
    def _validate(self, X, reset: bool) -> np.ndarray:
        values = as_float_array(X)
        validate_data(self, X if isinstance(X, pd.DataFrame) else values, reset=reset,
                      ensure_all_finite="allow-nan", dtype=None, skip_check_array=True)
        return values

    def _seed(self) -> int:
        """``random_state``, or a fresh seed from the operating system's entropy when None
        (the global generators are restored after each call, so they cannot supply one)."""
        if self.random_state is not None:
            return self.random_state
        return int(np.random.SeedSequence().entropy % 2**32)

    def _names(self, idx) -> list:
        names = getattr(self, "feature_names_in_", None)
        return [names[i] if names is not None else int(i) for i in idx]

    def _tensors(self, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        observed = ~np.isnan(values)
        standard = np.where(observed, (values - self.mean_) / self.scale_, 0.0)
        return torch.tensor(standard, dtype=torch.float32), torch.tensor(observed)

    def _original_scale(self, values: np.ndarray, filled: torch.Tensor) -> np.ndarray:
        imputed = filled.detach().cpu().double().numpy() * self.scale_ + self.mean_
        return np.where(np.isnan(values), imputed, values)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
