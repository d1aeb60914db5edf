"""The notmiwae command end to end on a small CSV, and configuration files."""

import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from notmiwae.inference.cli import main
from notmiwae.inference.config import dump_config, load_config
from notmiwae.inference.imputer import NotMIWAEImputer
from notmiwae.models.missingness import LinearMissing, SelfMasking

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    rng = np.random.default_rng(1)
    data = pd.DataFrame(rng.normal(size=(80, 2)) @ rng.normal(size=(2, 3)), columns=list("xyz"))
    data.insert(0, "id", [f"r{i}" for i in range(80)])
    path = tmp_path_factory.mktemp("data") / "data.csv"
    text = data.to_csv(index=False, float_format="%.6f").splitlines()
    # Missing cells spelled three ways: empty, NA and NaN.
    cells = [line.split(",") for line in text]
    for row, how in ((1, ""), (2, "NA"), (3, "NaN"), (5, "")):
        cells[row][1] = how
    path.write_text("\n".join(",".join(c) for c in cells) + "\n")
    return path


def test_fit_impute_check_end_to_end(csv, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", str(csv), "--index-col", "id", "--model", "notmiwae:linear",
                 "--iterations", "40", "--out", str(run)]) == 0
    for name in ("imputer.pt", "config.toml", "training_curve.png"):
        assert (run / name).stat().st_size > 0
    assert load_config(run / "config.toml")["missing"] == "linear"

    out = tmp_path / "imputed.csv"
    assert main(["impute", str(csv), "--index-col", "id", "--run", str(run),
                 "--out", str(out)]) == 0
    imputed = pd.read_csv(out)
    original = pd.read_csv(csv)
    assert list(imputed.columns) == ["id", "x", "y", "z"]
    assert imputed[["x", "y", "z"]].notna().all().all()
    assert original["x"].isna().sum() == 4
    observed = original["x"].notna()
    assert np.allclose(imputed.loc[observed, "x"], original.loc[observed, "x"])

    many = tmp_path / "many.csv"
    assert main(["impute", str(csv), "--index-col", "id", "--run", str(run), "--out", str(many),
                 "--multiple", "3"]) == 0
    stacked = pd.read_csv(many)
    assert len(stacked) == 240 and sorted(stacked["imputation"].unique()) == [1, 2, 3]
    assert stacked["id"].value_counts().eq(3).all()
    unnamed = tmp_path / "no_id.csv"
    pd.read_csv(csv).drop(columns="id").to_csv(unnamed, index=False)
    assert main(["impute", str(unnamed), "--run", str(run), "--out", str(many),
                 "--multiple", "2"]) == 0
    stacked = pd.read_csv(many)
    assert list(stacked.columns) == ["row", "x", "y", "z", "imputation"]
    assert sorted(stacked["row"]) == sorted(list(range(80)) * 2)

    checks = tmp_path / "checks"
    assert main(["check", str(csv), "--index-col", "id", "--run", str(run),
                 "--out", str(checks), "--replicates", "4"]) == 0
    assert (checks / "summary.md").read_text().startswith("| feature |")
    assert (checks / "histograms.png").exists() and (checks / "missingness.png").exists()


def test_errors_are_one_line_not_tracebacks(csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("notmiwae.inference.imputer.fit", None)  # no case below may reach training
    assert main(["fit", str(csv), "--iterations", "5", "--out", str(tmp_path)]) == 2
    assert "column 'id' holds a non-numeric value 'r0'" in capsys.readouterr().err
    assert main(["impute", str(tmp_path / "none.csv"), "--run", str(tmp_path),
                 "--out", "x.csv"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["impute", str(csv), "--index-col", "id", "--run", str(tmp_path),
                 "--out", "x.csv"]) == 2
    assert "no imputer.pt" in capsys.readouterr().err
    a_file = tmp_path / "taken"
    a_file.write_text("")
    assert main(["fit", str(csv), "--index-col", "id", "--out", str(a_file)]) == 2
    assert f"--out {a_file} is a file" in capsys.readouterr().err  # before any training
    config = tmp_path / "float.toml"
    config.write_text("[training]\niterations = 2e4\n")  # TOML reads 2e4 as a float
    assert main(["fit", str(csv), "--index-col", "id", "--config", str(config),
                 "--out", str(tmp_path / "run")]) == 2
    assert "'iterations' parameter of NotMIWAEImputer must be an int" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # the folder it made for the run is gone again
    for flag, args in (("--multiple", ["impute", "--run", str(tmp_path)]),
                       ("--iterations", ["fit"])):  # counts must be whole numbers >= 1
        with pytest.raises(SystemExit) as exit_info:
            main([*args, str(csv), "--out", "x.csv", flag, "0"])
        assert exit_info.value.code == 2
        assert f"{flag}: must be at least 1, got 0" in capsys.readouterr().err


def test_every_command_has_help_with_an_example(capsys):
    for command in ("fit", "impute", "check", "render"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "example" in capsys.readouterr().out


def test_a_one_line_config_change_swaps_the_missing_model(tmp_path):
    text = dump_config(NotMIWAEImputer(missing="selfmasking", iterations=5).get_params())
    first = tmp_path / "a.toml"
    first.write_text(text)
    second = tmp_path / "b.toml"
    second.write_text(text.replace('missing = "selfmasking"', 'missing = "linear"'))
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 3)))
    data.iloc[::3, 0] = np.nan
    a = NotMIWAEImputer(**load_config(first)).fit(data)
    b = NotMIWAEImputer(**load_config(second)).fit(data)
    assert type(a.program_.missingness) is SelfMasking
    assert type(b.program_.missingness) is LinearMissing


def test_config_errors_are_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nmissnig = 'linear'\n")
    with pytest.raises(ValueError, match="unknown key 'missnig' in \\[model\\]"):
        load_config(bad)
    bad.write_text("[modle]\n")
    with pytest.raises(ValueError, match="unknown section \\[modle\\]"):
        load_config(bad)
    variant = tmp_path / "variant.toml"
    variant.write_text("[model]\nmodel = 'notmiwae-ppca:selfmasking'\n")
    assert load_config(variant) == {"decoder": "linear-gaussian", "missing": "selfmasking"}


def test_user_defined_prior_and_missing_model_train(monkeypatch):
    """The README's extension example runs as written (fewer iterations)."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    module = runpy.run_path(str(ROOT / "examples" / "custom_parts.py"), run_name="example")
    rmse = module["main"](iterations=300)
    # Mean imputation gives 1.726 on these entries; 300 iterations reach about 1.25.
    assert rmse < 0.85 * 1.726, rmse
    sys.modules.pop("custom_parts", None)


def test_render_draws_the_graphical_model(tmp_path):
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    out = tmp_path / "model.png"
    assert main(["render", "--model", "notmiwae:linear", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_round_trips_the_imputer_parameters(tmp_path):
    params = NotMIWAEImputer(init="glorot", missing="linear", iterations=7,
                             num_samples=11).get_params()
    path = tmp_path / "model.toml"
    path.write_text(dump_config(params))
    back = load_config(path)
    assert back == {k: params[k] for k in back}
    assert back["init"] == "glorot"
    assert set(params) - set(back) <= {"verbose", "device", "latent_dim"}  # None or runtime
    data = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 3)))
    data.iloc[::4, 1] = np.nan
    imputed = NotMIWAEImputer(**back).fit_transform(data)
    assert np.isfinite(imputed).all()


def test_command_line_flags_override_the_config_file(csv, tmp_path, monkeypatch):
    """fit --config: the file's settings, then --model, --iterations and --seed on top;
    what was trained with is what config.toml records."""
    from notmiwae.inference.training import FitResult
    from notmiwae.models import build_model

    seen = {}

    def fake_fit(config, x, mask, train, device=None, progress=True, **_snapshots):
        seen.update(config=config, train=train, device=device)
        return FitResult(build_model(config).eval(), config, train, np.zeros(1))
    monkeypatch.setattr("notmiwae.inference.imputer.fit", fake_fit)
    config = tmp_path / "model.toml"
    config.write_text('[model]\nmissing = "linear"\nhidden = 8\nlatent_dim = 1\n'
                      '[training]\niterations = 50\nseed = 3\nbatch_size = 4\n'
                      'compile = true\n'
                      '[imputation]\nnum_samples = 7\nestimator = "sample"\n')
    run = tmp_path / "run"
    assert main(["fit", str(csv), "--index-col", "id", "--config", str(config),
                 "--model", "notmiwae-ppca:selfmasking", "--iterations", "9", "--seed", "11",
                 "--device", "cpu", "--no-compile", "--out", str(run)]) == 0
    model, train = seen["config"], seen["train"]
    assert train.compile is False  # --no-compile over the file's compile = true
    assert (model.missing, model.decoder) == ("selfmasking", "linear-gaussian")  # --model
    assert (model.hidden, model.latent_dim) == (8, 1)  # from the file
    assert (train.iterations, train.seed, train.batch_size) == (9, 11, 4)
    assert seen["device"] == "cpu"
    saved = load_config(run / "config.toml")
    assert saved["iterations"] == 9 and saved["random_state"] == 11
    assert saved["missing"] == "selfmasking" and saved["decoder"] == "linear-gaussian"
    assert saved["num_samples"] == 7 and saved["estimator"] == "sample"
    imputer = NotMIWAEImputer.load(run / "imputer.pt")
    assert imputer.get_params()["num_samples"] == 7 and imputer.seed_ == 11
    # Without flags the file's own values are used.
    seen.clear()
    assert main(["fit", str(csv), "--index-col", "id", "--config", str(config),
                 "--out", str(tmp_path / "plain")]) == 0
    assert seen["config"].missing == "linear" and seen["config"].decoder == "gaussian"
    assert (seen["train"].iterations, seen["train"].seed) == (50, 3)
    assert seen["train"].compile is True


def test_fit_replicas_makes_an_ensemble_the_config_and_impute_keep(csv, tmp_path, capsys):
    config = tmp_path / "model.toml"  # the flags override the file
    config.write_text('[training]\nreplicas = 3\n'
                      '[imputation]\nensemble = "pooled"\nnum_samples = 20\n')
    run = tmp_path / "run"
    assert main(["fit", str(csv), "--index-col", "id", "--iterations", "20", "--config",
                 str(config), "--replicas", "2", "--ensemble", "equal", "--out", str(run)]) == 0
    saved = load_config(run / "config.toml")
    assert saved["replicas"] == 2 and saved["ensemble"] == "equal"
    imputer = NotMIWAEImputer.load(run / "imputer.pt")
    assert len(imputer.programs_) == 2 and imputer.ensemble == "equal"
    assert (run / "training_curve.png").stat().st_size > 0  # one curve per replica
    out = tmp_path / "imputed.csv"
    assert main(["impute", str(csv), "--run", str(run), "--index-col", "id",
                 "--out", str(out)]) == 0
    data = pd.read_csv(csv, index_col="id")
    expected = imputer.transform(data)
    np.testing.assert_allclose(pd.read_csv(out, index_col="id").to_numpy(), expected,
                               rtol=1e-6)
    capsys.readouterr()
    many = tmp_path / "many.csv"
    assert main(["impute", str(csv), "--run", str(run), "--index-col", "id",
                 "--out", str(many), "--multiple", "50"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("notmiwae impute: warning: ")
    assert "effective sample size below the 50 draws asked" in err[0]
