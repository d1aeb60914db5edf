"""`notmiwae impute` in chunks of rows: the output of imputing the whole file at once,
CSV or Parquet in and out, bounded chunks."""

from pathlib import Path

import pandas as pd
import pytest

from notmiwae.inference import cli, streaming


def impute(data, run, out, *options) -> int:
    return cli.main(["impute", str(data), "--run", str(run), "--out", str(out), *options])


@pytest.fixture(scope="module")
def whole(trained_run, tmp_path_factory):
    """The test file imputed as today's small files are: read at once."""
    run, data = trained_run
    out = tmp_path_factory.mktemp("whole") / "whole.csv"
    assert impute(data, run, out, "--index-col", "id") == 0
    return out


def test_chunks_give_the_whole_file_imputation_byte_for_byte(trained_run, whole, tmp_path):
    run, data = trained_run
    chunked = tmp_path / "chunked.csv"
    assert impute(data, run, chunked, "--index-col", "id", "--chunk-rows", "1000") == 0
    assert chunked.read_bytes() == whole.read_bytes()  # 3 chunks: 1024, 1024, 52 rows
    assert not (tmp_path / "chunked.csv.partial").exists()


def test_without_an_identifier_column_too(trained_run, tmp_path):
    run, data = trained_run
    features = tmp_path / "features.csv"
    pd.read_csv(data).drop(columns="id").to_csv(features, index=False)
    at_once, chunked = tmp_path / "at_once.csv", tmp_path / "chunked.csv"
    assert impute(features, run, at_once) == 0
    assert impute(features, run, chunked, "--chunk-rows", "1024") == 0
    assert chunked.read_bytes() == at_once.read_bytes()


def test_parquet_in_and_out_holds_the_same_rows(trained_run, whole, tmp_path):
    run, data = trained_run
    parquet = tmp_path / "data.parquet"
    pd.read_csv(data).to_parquet(parquet, row_group_size=700)
    assert impute(parquet, run, tmp_path / "out.parquet", "--index-col", "id") == 0
    assert impute(parquet, run, tmp_path / "out.csv", "--index-col", "id",
                  "--chunk-rows", "2000") == 0
    expected = pd.read_csv(whole)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), expected)
    assert (tmp_path / "out.csv").read_bytes() == whole.read_bytes()


def test_chunks_stay_within_their_size(trained_run, monkeypatch, tmp_path):
    run, data = trained_run
    seen = []
    original = streaming.impute_frame

    def recording(imputer, frame, *args, **kwargs):
        seen.append(len(frame))
        return original(imputer, frame, *args, **kwargs)

    monkeypatch.setattr(streaming, "impute_frame", recording)
    assert impute(data, run, tmp_path / "out.csv", "--index-col", "id",
                  "--chunk-rows", "1025") == 0
    assert seen == [2048, 52]  # rounded up to whole blocks of 1024 rows


def test_bad_streaming_requests_are_named(trained_run, tmp_path, capsys):
    run, data = trained_run
    assert impute(data, run, tmp_path / "m.csv", "--multiple", "2", "--chunk-rows",
                  "100") == 2
    assert "--multiple reads the whole file" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    pd.read_csv(data).rename(columns={"f2": "g"}).to_csv(other, index=False)
    assert impute(other, run, tmp_path / "o.csv", "--index-col", "id",
                  "--chunk-rows", "100") == 2
    assert "differ from the run's ['f0', 'f1', 'f2', 'f3']" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.partial").exists()


def test_large_files_and_parquet_stream_by_themselves(tmp_path, monkeypatch):
    args = cli.build_parser().parse_args(["impute", "a.csv", "--run", "r", "--out", "b.csv"])
    assert not streaming.wanted(args)
    args.out = "b.parquet"
    assert streaming.wanted(args)
    big = tmp_path / "big.csv"
    big.write_text("a\n1\n")
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 2)
    args.data, args.out = str(big), "b.csv"
    assert streaming.wanted(args)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_million_rows_stream_in_a_fraction_of_the_whole_files_memory(tmp_path):
    """The peak of `notmiwae impute` over 1,000,000 rows in the default chunks, above that
    of imputing 1,000 rows, stays under a third of the file's data frame (measured: 20 MiB
    against 92 MiB; reading the file whole peaks at 278 MiB)."""
    from notmiwae.experiments import stream_bench

    big, small, run = tmp_path / "big.csv", tmp_path / "small.csv", tmp_path / "run"
    stream_bench.write_table(big, 1_000_000, 10)
    pd.read_csv(big, nrows=1000).to_csv(small, index=False)
    stream_bench.train(big, run)
    _, _, frame_bytes = stream_bench.measure(["-c", stream_bench.READ_WHOLE, str(big)],
                                             tmp_path)
    chunk = streaming.CHUNK_ROWS
    _, baseline, _ = stream_bench.measure(
        stream_bench.impute_command(small, run, tmp_path / "small_out.csv", chunk), tmp_path)
    _, streamed, _ = stream_bench.measure(
        stream_bench.impute_command(big, run, tmp_path / "big_out.csv", chunk), tmp_path)
    over, frame = (streamed - baseline) / 2**20, int(frame_bytes) / 2**20
    assert over < frame / 3, f"streamed {over:.0f} MiB over the baseline, frame {frame:.0f} MiB"
    with open(tmp_path / "big_out.csv") as out:
        assert sum(1 for _ in out) == 1_000_001


def test_a_streamed_ensemble_imputes_with_every_replica(tmp_path):
    """An ensemble run streams (chunks, Parquet, Ray) as it transforms in memory: with all
    its replicas, not the first alone."""
    import numpy as np

    from notmiwae.inference.imputer import NotMIWAEImputer

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(90, 3)), columns=list("abc"))
    frame.iloc[::3, 0] = np.nan
    imputer = NotMIWAEImputer(replicas=2, iterations=20, num_samples=30, hidden=8,
                              verbose=False).fit(frame)
    streamed = streaming.impute_frame(imputer, frame, None, seed=imputer.random_state)
    assert np.array_equal(streamed.to_numpy(), imputer.transform(frame))
    alone = NotMIWAEImputer(iterations=20, num_samples=30, hidden=8, verbose=False)
    assert not np.array_equal(streamed.to_numpy(), alone.fit(frame).transform(frame))
