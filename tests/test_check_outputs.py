"""The tables and figures of the posterior predictive checks, read back element by element."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from notmiwae.inference import checks
from tests.conftest import toy_program

matplotlib.use("Agg")


@pytest.fixture
def figures(monkeypatch):
    """Every figure saved during the test, with the keyword arguments of savefig."""
    from matplotlib.figure import Figure

    saved = []

    def record(fig, path, **kwargs):
        saved.append((fig, path, kwargs))
    monkeypatch.setattr(Figure, "savefig", record)
    return saved


def data_and_replicates():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5]
    data[::3, 0] = np.nan
    data[::4, 2] = np.nan
    x_rep = rng.normal(size=(6, 40, 5)) * [1, 2, 3, 4, 5]
    s_rep = rng.random((6, 40, 5)) > 0.2
    s_rep[..., 4] = True  # feature 4: nothing missing in the replicates
    return data, x_rep, s_rep, ["a", "b", "c", "d", "e"]


def test_summary_table_by_hand():
    data, x_rep, s_rep, names = data_and_replicates()
    table = checks.summary_table(data, x_rep, s_rep, names)
    rate_rep = 1 - s_rep.mean(1)  # (S, D)
    rep = np.where(s_rep, x_rep, np.nan)
    assert list(table["feature"]) == names
    np.testing.assert_allclose(table["missing_rate"], np.isnan(data).mean(0))
    np.testing.assert_allclose(table["missing_rate_rep"], rate_rep.mean(0))
    np.testing.assert_allclose(table["missing_rate_rep_q05"], np.quantile(rate_rep, 0.05, 0))
    np.testing.assert_allclose(table["missing_rate_rep_q95"], np.quantile(rate_rep, 0.95, 0))
    np.testing.assert_allclose(table["observed_mean"], np.nanmean(data, 0))
    np.testing.assert_allclose(table["observed_mean_rep"], np.nanmean(rep, (0, 1)))
    np.testing.assert_allclose(table["observed_sd"], np.nanstd(data, 0))
    np.testing.assert_allclose(table["observed_sd_rep"], np.nanstd(rep, (0, 1)))


def test_a_feature_the_replicates_never_observe_has_no_replicated_mean_and_no_warning():
    data, x_rep, s_rep, names = data_and_replicates()
    s_rep[..., 1] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = checks.summary_table(data, x_rep, s_rep, names)
    assert table.loc[1, "missing_rate_rep"] == 1.0
    assert np.isnan(table.loc[1, ["observed_mean_rep", "observed_sd_rep"]]).all()
    assert np.isfinite(table.loc[0, ["observed_mean_rep", "observed_sd_rep"]]).all()


def test_correlation_table_by_hand():
    data, x_rep, s_rep, names = data_and_replicates()
    table = checks.correlation_table(data, x_rep, s_rep, names)
    assert len(table) == 10 and list(table.columns) == ["feature_a", "feature_b", "corr",
                                                        "corr_rep"]
    assert list(zip(table["feature_a"], table["feature_b"], strict=True))[:5] == [
        ("a", "b"), ("a", "c"), ("a", "d"), ("a", "e"), ("b", "c")]
    rep = np.where(s_rep, x_rep, np.nan).reshape(-1, 5)
    for a, b, corr, corr_rep in table.itertuples(index=False):
        i, j = names.index(a), names.index(b)
        both = ~np.isnan(data[:, i]) & ~np.isnan(data[:, j])
        assert corr == pytest.approx(np.corrcoef(data[both, i], data[both, j])[0, 1])
        both = ~np.isnan(rep[:, i]) & ~np.isnan(rep[:, j])
        assert corr_rep == pytest.approx(np.corrcoef(rep[both, i], rep[both, j])[0, 1])


def test_markdown_table():
    frame = pd.DataFrame({"name": ["x", "y"], "value": [0.12345, 2.0], "n": [3, 4]})
    assert checks.to_markdown(frame) == ("| name | value | n |\n|---|---|---|\n"
                                         "| x | 0.123 | 3 |\n| y | 2.000 | 4 |\n")
    assert checks.to_markdown(frame, digits=1).splitlines()[2] == "| x | 0.1 | 3 |"


def test_histograms_show_data_and_both_kinds_of_replicated_values(figures, tmp_path):
    data, x_rep, s_rep, names = data_and_replicates()
    checks.plot_histograms(data, x_rep, s_rep, names, tmp_path / "h.png")
    ((fig, path, kwargs),) = figures
    assert path == tmp_path / "h.png" and kwargs == {"dpi": 110}
    axes = fig.axes
    assert len(axes) == 8 and tuple(fig.get_size_inches()) == pytest.approx((12, 4.8))
    assert [ax.get_title() for ax in axes[:5]] == names
    assert all(ax.title.get_fontsize() == 9 for ax in axes[:5])
    assert not any(ax.axison for ax in axes[5:]) and all(ax.axison for ax in axes[:5])
    _, labels = axes[0].get_legend_handles_labels()
    assert labels == ["observed data", "replicated, observed", "replicated, missing"]
    assert axes[0].get_legend().get_texts()[0].get_fontsize() == 7
    assert axes[1].get_legend() is None
    _, labels = axes[4].get_legend_handles_labels()  # nothing replicated missing there
    assert labels == ["observed data", "replicated, observed"]
    for j, ax in enumerate(axes[:5]):
        col = data[:, j]
        edges = np.histogram_bin_edges(np.concatenate([col[~np.isnan(col)],
                                                       x_rep[..., j].ravel()]), 30)
        bars = ax.containers[0]
        assert len(bars) == 30
        lefts = np.array([bar.get_x() for bar in bars])
        heights = np.array([bar.get_height() for bar in bars])
        np.testing.assert_allclose(lefts, edges[:-1])
        np.testing.assert_allclose(heights, np.histogram(col[~np.isnan(col)], edges,
                                                         density=True)[0])
        assert bars[0].get_alpha() == 0.5
        steps = [p for p in ax.patches if p not in list(bars)]
        assert len(steps) == (2 if j < 4 else 1)
        assert steps[0].get_linewidth() == 1.5
        observed_rep = np.histogram(x_rep[..., j][s_rep[..., j]], edges, density=True)[0]
        tops = steps[0].get_xy()[:, 1]
        np.testing.assert_allclose(np.unique(tops[tops > 0]),
                                   np.unique(observed_rep[observed_rep > 0]))
        if j < 4:
            _, dashes = steps[1].get_linestyle()  # "--": a long dash, a short gap
            assert len(dashes) == 2 and dashes[0] > 2 * dashes[1]
            assert steps[0].get_linestyle() == "solid"
            missing_rep = np.histogram(x_rep[..., j][~s_rep[..., j]], edges,
                                       density=True)[0]
            tops = steps[1].get_xy()[:, 1]
            np.testing.assert_allclose(np.unique(tops[tops > 0]),
                                       np.unique(missing_rep[missing_rep > 0]))


def test_missingness_curves_plot_the_learned_probability(figures, tmp_path):
    program = toy_program("selfmasking_known", d=3).float()
    grid = np.linspace(-2, 2, 9)
    truth = np.random.default_rng(1).normal(size=(100, 3))
    observed = truth < 0.5
    checks.plot_missingness_curves(
        program, ["p", "q", "r"], tmp_path / "m.png", to_original=lambda j, g: 10 * g + j,
        true_curve=lambda j, g: np.full_like(g, 0.25 * j), grid=grid,
        truth=(truth, observed))
    ((fig, _, kwargs),) = figures
    assert kwargs == {"dpi": 110}
    axes = fig.axes
    assert len(axes) == 3 and tuple(fig.get_size_inches()) == pytest.approx((9, 2.4))
    assert all(ax.axison for ax in axes)  # every panel drawn
    assert [ax.get_title() for ax in axes] == ["p", "q", "r"]
    assert axes[0].get_ylabel() == "P(observed)"
    assert axes[0].get_legend() is not None and axes[1].get_legend() is None
    assert axes[0].get_legend().get_texts()[0].get_fontsize() == 7
    assert {ax.title.get_fontsize() for ax in axes} == {9}
    _, labels = axes[0].get_legend_handles_labels()
    assert labels == ["learned", "true", "data (binned truth)"]
    for j, ax in enumerate(axes):
        assert ax.get_ylim() == pytest.approx((-0.05, 1.05))
        learned, true, data = ax.get_lines()
        x = torch.zeros(len(grid), 3)
        x[:, j] = torch.as_tensor(grid, dtype=torch.float32)
        with torch.no_grad():
            expected = torch.sigmoid(program.missingness(x))[:, j].numpy()
        np.testing.assert_allclose(learned.get_xdata(), 10 * grid + j)
        np.testing.assert_allclose(learned.get_ydata(), expected, rtol=1e-6)
        np.testing.assert_allclose(true.get_ydata(), 0.25 * j)
        np.testing.assert_allclose(true.get_xdata(), 10 * grid + j)
        assert true.get_linestyle() == "--"
        centres, fraction = checks.observed_fraction(truth[:, j], observed[:, j])
        np.testing.assert_allclose(data.get_xdata(), centres)
        np.testing.assert_allclose(data.get_ydata(), fraction)
        assert data.get_marker() == "o" and data.get_markersize() == 3
    # Without a transformation, a truth or a true curve: the learned curve on the grid.
    figures.clear()
    checks.plot_missingness_curves(program, ["p", "q", "r"], tmp_path / "m.png")
    axes = figures[0][0].axes
    assert len(axes[1].get_lines()) == 1
    assert all(ax.get_ylim() == pytest.approx((-0.05, 1.05)) for ax in axes)
    np.testing.assert_allclose(axes[1].get_lines()[0].get_xdata(), np.linspace(-3, 3, 121))
    with pytest.raises(ValueError, match="^the model has an ignorable missing process: no "
                                         "curve to draw$"):
        checks.plot_missingness_curves(toy_program("ignorable", d=3), ["p", "q", "r"],
                                       tmp_path / "m.png")


def test_imputed_against_true_scatter(figures, tmp_path):
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(30, 5))
    imputed = truth + rng.normal(scale=0.1, size=truth.shape)
    mask = rng.random((30, 5)) > 0.3
    mask[:, 3] = True  # nothing missing in column 3
    checks.plot_imputed_vs_true(truth, imputed, mask, list("vwxyz"), tmp_path / "s.png")
    ((fig, _, _),) = figures
    axes = fig.axes
    assert len(axes) == 8 and [ax.get_title() for ax in axes[:5]] == list("vwxyz")
    assert axes[0].get_xlabel() == "true" and axes[0].get_ylabel() == "imputed"
    for j in (0, 1, 2, 4):
        miss = ~mask[:, j]
        (points,) = axes[j].collections
        assert points.get_sizes().tolist() == [4] and points.get_alpha() == 0.5
        np.testing.assert_allclose(points.get_offsets(), np.stack([truth[miss, j],
                                                                   imputed[miss, j]], 1))
        (line,) = axes[j].get_lines()
        assert line.get_color() == "k" and line.get_linewidth() == 0.8
        assert axes[j].title.get_fontsize() == 9
        lo, hi = truth[miss, j].min(), truth[miss, j].max()
        np.testing.assert_allclose(line.get_xdata(), [lo, hi])
        np.testing.assert_allclose(line.get_ydata(), [lo, hi])
    (note,) = axes[3].texts
    assert not axes[3].axison and note.get_text() == "no missing values"
    assert note.get_transform() is axes[3].transAxes and note.get_position() == (0.5, 0.5)
    assert [ax.axison for ax in axes] == [True] * 3 + [False, True] + [False] * 3
    assert axes[3].get_title() == "y"


def test_a_masked_models_curves_share_one_set_of_500_z_mask_draws(figures, tmp_path):
    """The masked not-MIWAE's P(observed | x) averages over z_mask from its prior: every
    feature's curve uses the same 500 draws (one seeded stream, drawn once)."""
    import pyro

    program = toy_program("selfmasking", d=3, latent_mask=True).float()
    grid = np.linspace(-2, 2, 7)
    pyro.set_rng_seed(4)
    checks.plot_missingness_curves(program, ["p", "q", "r"], tmp_path / "m.png", grid=grid)
    pyro.set_rng_seed(4)
    z_mask = program.latent_mask.prior().sample((500,))
    for j, ax in enumerate(figures[0][0].axes):
        x = torch.zeros(len(grid), 3)
        x[:, j] = torch.as_tensor(grid, dtype=torch.float32)
        expected = checks.learned_observed_probability(program, x, z_mask)[:, j].numpy()
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), expected, rtol=1e-6)


def test_one_feature_gets_a_figure_of_one_panel(figures, tmp_path):
    truth = np.arange(10.0).reshape(10, 1)
    mask = np.arange(10).reshape(10, 1) % 2 == 0
    checks.plot_imputed_vs_true(truth, truth + 0.5, mask, ["only"], tmp_path / "one.png")
    ((fig, _, _),) = figures
    assert [ax.get_title() for ax in fig.axes] == ["only"]
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(),
                               np.stack([truth[~mask], truth[~mask] + 0.5], 1))
