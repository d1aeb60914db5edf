"""Bad input, diverging and interrupted training, saved runs: through the notmiwae command
and NotMIWAEImputer, each failure is one readable line and nothing is half-written."""

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from notmiwae.inference import training
from notmiwae.inference.cli import main
from notmiwae.inference.config import load_config
from notmiwae.inference.imputer import NotMIWAEImputer
from notmiwae.inference.stopping import TrainingDiverged, TrainingInterrupted
from notmiwae.inference.tables import DataError

TINY = dict(iterations=20, hidden=8, num_particles=3, num_samples=8, batch_size=8)
TINY_TOML = ("[model]\nhidden = 8\n[training]\nbatch_size = 8\nnum_particles = 3\n"
             "[imputation]\nnum_samples = 8\n")
pytestmark = pytest.mark.filterwarnings("ignore:only .* rows with an observed value")


def table(n=40, seed=0, ids=True):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, 2)) @ rng.normal(size=(2, 3)), columns=list("abc"))
    data.loc[data["a"] > 0.5, "a"] = np.nan
    if ids:
        data.insert(0, "id", [f"r{i}" for i in range(n)])
    return data


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A data file with an identifier column, a tiny config, and a run fitted on them."""
    folder = tmp_path_factory.mktemp("files")
    data = folder / "data.csv"
    table().to_csv(data, index=False)
    config = folder / "tiny.toml"
    config.write_text(TINY_TOML)
    run = folder / "run"
    assert main(["fit", str(data), "--index-col", "id", "--config", str(config),
                 "--iterations", "20", "--out", str(run)]) == 0
    return data, config, run


def error_of(capsys, argv, status=2):
    """The one line the command printed on stderr besides its progress bar."""
    assert main(argv) == status
    err = capsys.readouterr().err
    lines = [line for line in re.split(r"[\r\n]+", err)
             if line.strip() and not line.startswith("training:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- bad input through the command -------------------------------------------------------

BAD_FILES = {
    "empty.csv": ("", "empty.csv is empty"),
    "header.csv": ("a,b,c\n", "header.csv has a header (['a', 'b', 'c']) but no data rows"),
    "dup.csv": ("a,b,a\n1,2,3\n", "dup.csv: duplicate column name(s) ['a']"),
    "table.parquet": ("PAR1\x00\x00", "table.parquet is not a CSV file"),
    "inf.csv": ("a,b\n" + "1,2\n" * 12 + "inf,3\n",
                "inf.csv: column 'a' holds an infinite value inf (row 12)"),
    "huge.csv": ("a,b\n" + "1,2\n" * 12 + "1e200,3\n",
                 "huge.csv: column 'a' holds a value too large to standardise"),
    "words.csv": ("a,b\n" + "1,yes\n2,no\n" * 6,
                  "words.csv: column 'b' holds a non-numeric value 'yes' (row 0); only "
                  "numbers can be imputed"),
    "names.csv": ("name,b\n" + "".join(f"p{i},{i}\n" for i in range(12)),
                  "names.csv: column 'name' holds a non-numeric value 'p0' (row 0); it "
                  "looks like a row identifier: make it the index (--index-col name"),
    "unobserved.csv": ("a,b\n" + "1,\n" * 12, "unobserved.csv: column(s) ['b'] have no "
                                              "observed value"),
    "few.csv": ("a,b\n" + "1,2\n" * 9, "few.csv: 9 row(s) with an observed value "
                                       "(n_samples=9); at least 10 are needed"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_data_file_is_one_line_naming_it(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setattr("notmiwae.inference.imputer.fit", None)  # none may reach training
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(content)
    err = error_of(capsys, ["fit", str(path), "--out", str(tmp_path / "run")])
    assert f"{tmp_path}/{message}" in err
    assert not (tmp_path / "run").exists()


def test_missing_file_and_folder_are_named(tmp_path, capsys, files):
    data, _, run = files
    assert "no such file: nope.csv" in error_of(capsys, ["fit", "nope.csv", "--out", "r"])
    err = error_of(capsys, ["impute", str(data), "--run", str(tmp_path), "--out", "x.csv"])
    assert "no imputer.pt; train one with 'notmiwae fit'" in err
    (tmp_path / "file").write_text("")
    err = error_of(capsys, ["impute", str(data), "--run", str(run),
                            "--out", str(tmp_path / "file" / "x.csv")])
    assert "cannot create the folder" in err and "is a file" in err


def test_unknown_components_list_the_known_ones(tmp_path, capsys, files):
    data = files[0]
    err = error_of(capsys, ["fit", str(data), "--model", "notmiwae:cubic", "--out", "r"])
    assert "unknown missing 'cubic'; choose from ['ignorable', 'linear'" in err
    assert "families are ['masked-notmiwae'" in error_of(
        capsys, ["fit", str(data), "--model", "vae", "--out", "r"])
    config = tmp_path / "bad.toml"
    config.write_text("[model]\ndecoder = 'poisson'\n")
    with pytest.raises(ValueError, match="unknown decoder 'poisson' in \\[model\\]; known: "
                                         "\\['bernoulli', .*'gaussian'"):
        load_config(config)
    with pytest.raises(ValueError, match="unknown prior 'flat'; choose from \\[.*'normal'"):
        NotMIWAEImputer(prior="flat").fit(table(ids=False))


def test_fit_help_lists_the_models_and_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("miwae,", "ppca,", "notmiwae:<missing>", "notmiwae-ppca:<missing>",
                 "masked-notmiwae:<missing>", "selfmasking_known",
                 "default: the config's, else notmiwae:selfmasking_known"):
        assert name in text


# -- a run remembers its data file's layout ----------------------------------------------

def test_the_run_remembers_the_index_column_and_column_order(tmp_path, capsys, files):
    data, _, run = files
    assert json.loads((run / "run.json").read_text()) == {
        "index_col": "id", "columns": ["a", "b", "c"], "parts": []}  # no parts of one's own
    original = pd.read_csv(data)
    moved = tmp_path / "moved.csv"
    original[["c", "id", "a", "b"]].to_csv(moved, index=False)
    out = tmp_path / "new" / "folder" / "imputed.csv"  # folders are created
    assert main(["impute", str(moved), "--run", str(run), "--out", str(out)]) == 0
    imputed = pd.read_csv(out)
    assert list(imputed.columns) == ["id", "c", "a", "b"]  # the file's own order
    observed = original["a"].notna()
    assert imputed["a"].notna().all()
    assert np.array_equal(imputed.loc[observed, "a"], original.loc[observed, "a"])
    no_ids = tmp_path / "no_ids.csv"
    original.drop(columns="id").to_csv(no_ids, index=False)  # without it: fine too
    assert main(["impute", str(no_ids), "--run", str(run), "--out", str(out)]) == 0
    assert list(pd.read_csv(out).columns) == ["a", "b", "c"]
    assert main(["check", str(data), "--run", str(run), "--out", str(tmp_path / "checks"),
                 "--replicates", "2"]) == 0


def test_a_file_with_other_columns_names_missing_and_extra(tmp_path, capsys, files):
    data, _, run = files
    other = tmp_path / "other.csv"
    pd.read_csv(data).drop(columns="b").assign(d=1.0).to_csv(other, index=False)
    err = error_of(capsys, ["impute", str(other), "--run", str(run), "--out",
                            str(tmp_path / "x.csv")])
    assert "other.csv: the columns differ from the run's: missing ['b']; extra ['d']" in err
    assert not (tmp_path / "x.csv").exists()


def test_nothing_missing_is_said_and_written_unchanged(tmp_path, capsys, files):
    data, _, run = files
    complete = tmp_path / "complete.csv"
    pd.read_csv(data).fillna(1.5).to_csv(complete, index=False)
    out = tmp_path / "out.csv"
    assert main(["impute", str(complete), "--run", str(run), "--out", str(out)]) == 0
    assert "nothing to impute" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(complete))


def test_an_interrupted_impute_leaves_the_old_output(tmp_path, capsys, files, monkeypatch):
    data, _, run = files
    out = tmp_path / "out.csv"
    out.write_text("old\n")

    def interrupted(self, frame, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    err = error_of(capsys, ["impute", str(data), "--run", str(run), "--out", str(out)], 130)
    assert err == "notmiwae impute: interrupted; no output was written"
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out.csv"]


# -- saved imputers ----------------------------------------------------------------------

def test_load_keeps_set_output(tmp_path):
    imputer = NotMIWAEImputer(**TINY).set_output(transform="pandas").fit(table(ids=False))
    imputer.save(tmp_path / "imp.pt")
    assert isinstance(NotMIWAEImputer.load(tmp_path / "imp.pt").transform(table(ids=False)),
                      pd.DataFrame)


@pytest.mark.parametrize("change, message", [
    (lambda blob: blob.update(imputer_format=99, version="9.9"),
     "was saved by notmiwae 9.9 \\(format 99\\); this is notmiwae .*: fit the imputer again"),
    (lambda blob: blob["model_config"].update(n_features=5),
     "the saved weights do not fit the model its configuration builds"),
    (lambda blob: blob.update(mean=blob["mean"][:2]), "scaling of 2 features"),
    (lambda blob: blob.pop("imputer_params"), "a model checkpoint, not a saved"),
])
def test_a_checkpoint_of_another_version_or_shape_is_refused(tmp_path, change, message):
    path = tmp_path / "imp.pt"
    NotMIWAEImputer(**{**TINY, "iterations": 2}).fit(table(ids=False)).save(path)
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)
    with pytest.raises(ValueError, match=message):
        NotMIWAEImputer.load(path)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "imputer.pt").write_text("a,b\n1,2\n")
    err = error_of(capsys, ["impute", str(run / "imputer.pt"), "--run", str(run),
                            "--out", str(tmp_path / "x.csv")])
    assert "imputer.pt is not a readable saved imputer" in err


# -- training that diverges or is interrupted --------------------------------------------

def patch_steps(monkeypatch, after: int, action) -> None:
    """Make training's step do ``action(bound)`` once it has run ``after`` steps."""
    make_step = training._iw_step

    def patched(*args):
        step, count = make_step(*args), [0]

        def wrapped(*a):
            count[0] += 1
            bound = step(*a)
            return action(bound) if count[0] == after else bound
        return wrapped
    monkeypatch.setattr(training, "_iw_step", patched)


@pytest.fixture
def ctrl_c_works():
    """Python's own Ctrl-C handler, also where the tests run with SIGINT ignored (a
    background job of a shell); a child process then gets the default too."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def fit_argv(files, out, iterations=30):
    data, config, _ = files
    return ["fit", str(data), "--index-col", "id", "--config", str(config), "--iterations",
            str(iterations), "--snapshot-every", "5", "--out", str(out)]


def test_a_nan_bound_stops_training_keeping_the_last_snapshot(tmp_path, capsys, files,
                                                              monkeypatch):
    patch_steps(monkeypatch, 7, lambda bound: bound * np.nan)
    err = error_of(capsys, fit_argv(files, tmp_path / "run"), status=1)
    assert "the bound is nan at iteration 7; the last good snapshot is kept in" in err
    assert "try a smaller learning rate" in err
    assert torch.load(tmp_path / "run" / "snapshot.pt", weights_only=True)["iteration"] == 5
    assert not (tmp_path / "run" / "imputer.pt").exists()
    monkeypatch.undo()
    patch_steps(monkeypatch, 7, lambda bound: bound - np.inf)
    with pytest.raises(TrainingDiverged, match="bound is -inf at iteration 7; try"):
        NotMIWAEImputer(**TINY).fit(table(ids=False))


def test_ctrl_c_saves_a_snapshot_and_the_same_command_resumes_exactly(
        tmp_path, capsys, files, monkeypatch, ctrl_c_works):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(fit_argv(files, whole)) == 0
    assert not (whole / "snapshot.pt").exists()  # removed once the run is saved

    def ctrl_c(bound):
        signal.raise_signal(signal.SIGINT)
        return bound

    patch_steps(monkeypatch, 17, ctrl_c)
    err = error_of(capsys, fit_argv(files, parts), status=130)
    assert err == (f"notmiwae fit: training interrupted after iteration 17; saved a snapshot "
                   f"in {parts / 'snapshot.pt'}: run the same command again to resume")
    monkeypatch.undo()
    assert main(fit_argv(files, parts)) == 0
    assert "resuming from" in capsys.readouterr().out
    a = torch.load(whole / "imputer.pt", weights_only=True)
    b = torch.load(parts / "imputer.pt", weights_only=True)
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert torch.equal(a["history"], b["history"])
    assert (whole / "config.toml").read_text() == (parts / "config.toml").read_text()


def test_ctrl_c_in_the_python_api_without_a_snapshot(monkeypatch, ctrl_c_works):
    patch_steps(monkeypatch, 3, lambda bound: signal.raise_signal(signal.SIGINT) or bound)
    with pytest.raises(TrainingInterrupted, match="interrupted after iteration 3$"):
        NotMIWAEImputer(**TINY).fit(table(ids=False))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_real_ctrl_c_to_the_command(tmp_path, files, ctrl_c_works):
    """The command as a user runs it: SIGINT to the process, one line, a snapshot."""
    run = tmp_path / "run"
    argv = fit_argv(files, run, iterations=1_000_000)
    process = subprocess.Popen([sys.executable, "-m", "notmiwae.inference.cli", *argv,
                                "--threads", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "snapshot.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    last = err.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith("notmiwae fit: training interrupted after iteration ")
    assert "run the same command again to resume" in last and "Traceback" not in err
    assert torch.load(run / "snapshot.pt", weights_only=True)["iteration"] > 0


# -- the Python API: the same words --------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (lambda t: t.rename(columns={"c": "a"}), "duplicate column name\\(s\\) \\['a'\\]"),
    (lambda t: t.assign(id=[f"r{i}" for i in range(len(t))]),
     "column 'id' holds a non-numeric value 'r0' \\(row 0\\); it looks like a row identifier"),
    (lambda t: t.assign(b=1e300), "column 'b' holds a value too large to standardise"),
    (lambda t: t.iloc[:9], "9 row\\(s\\) with an observed value"),
])
def test_bad_frames_are_named_by_the_imputer(bad, message):
    with pytest.raises(DataError, match=message):
        NotMIWAEImputer(**TINY).fit(bad(table(ids=False)))


def test_few_rows_warn_and_a_constant_column_stays_as_it_is():
    data = table(n=30, ids=False).assign(k=7.25, h=3.0)
    data.loc[::4, "h"] = np.nan  # a constant column with gaps
    with pytest.warns(UserWarning, match="only 30 rows with an observed value: with fewer "
                                         "than 100") as caught:
        imputer = NotMIWAEImputer(**TINY).fit(data)
    few = [w for w in caught if "only 30 rows" in str(w.message)]
    assert few and {w.filename for w in few} == {__file__}  # the caller's line
    out = imputer.transform(data)
    assert np.isfinite(out).all()
    assert (out[:, 3] == 7.25).all()
    observed = data.notna().to_numpy()
    assert np.array_equal(out[observed], data.to_numpy()[observed])


def test_same_seed_same_result_and_nothing_missing_is_returned_as_is():
    data = table(n=30, ids=False)
    a = NotMIWAEImputer(**TINY, random_state=3).fit(data)
    b = NotMIWAEImputer(**TINY, random_state=3).fit(data)
    assert np.array_equal(a.history_, b.history_)
    assert np.array_equal(a.transform(data), b.transform(data))
    assert all(np.array_equal(x, y) for x, y in zip(a.sample(data, 2), b.sample(data, 2),
                                                    strict=True))
    complete = data.fillna(0.5)
    assert np.array_equal(a.transform(complete), complete.to_numpy())
    assert all(np.array_equal(c, complete) for c in a.sample(complete, 2))


def test_progress_is_shown_for_long_training_by_default():
    imputer = NotMIWAEImputer()
    assert imputer.verbose == "auto" and imputer._progress()
    assert not imputer.set_params(iterations=50)._progress()
    assert imputer.set_params(verbose=True)._progress()
