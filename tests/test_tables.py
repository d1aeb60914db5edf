"""Reading data files and writing outputs: every bad file is named, outputs are atomic."""

import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notmiwae.inference.tables import (
    DataError,
    align_columns,
    atomic_path,
    output_path,
    read_table,
    write_csv,
)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"a,b,c\n", "has a header \\(\\['a', 'b', 'c'\\]\\) but no data rows"),
    (b"a,b,a\n1,2,3\n", "duplicate column name\\(s\\) \\['a'\\]"),
    (b"PAR1\x00\x01binary", "is not a CSV file \\(it holds binary data\\)"),
    (b"a,b\n\xff\xfe\xfa,1\n", "is not a UTF-8 text file"),
    (b'a,b\n1,2\n"open,3\n', "is not a readable CSV file"),
])
def test_a_bad_file_is_named(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"{path}.*{message}|{message}") as info:
        read_table(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_folder_and_index_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*nope.csv"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)
    path = tmp_path / "d.csv"
    path.write_text("id,x\nr1,1\nr2,\n")
    with pytest.raises(DataError, match="no column 'key' to use as index; columns are "
                                        "\\['id', 'x'\\]"):
        read_table(path, "key")
    assert list(read_table(path, "key", index_required=False).columns) == ["id", "x"]
    frame = read_table(path, "id")
    assert frame.index.name == "id" and frame["x"].isna().tolist() == [False, True]
    with pytest.raises(DataError, match="no feature column besides the index 'id'"):
        read_table(_write(tmp_path / "only_id.csv", "id\nr1\n"), "id")


def _write(path, text):
    path.write_text(text)
    return path


def test_columns_are_aligned_to_the_runs_or_named(tmp_path):
    frame = pd.DataFrame({"b": [1.0], "a": [2.0]})
    assert list(align_columns(frame, ["a", "b"], "f.csv").columns) == ["a", "b"]
    with pytest.raises(DataError, match="f.csv: the columns differ from the run's: "
                                        "missing \\['c'\\]; extra \\['b'\\]"):
        align_columns(frame, ["a", "c"], "f.csv")


def test_outputs_are_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.csv"
    write_csv(pd.DataFrame({"a": [1]}), target, index=False)  # folders are created
    assert target.read_text() == "a\n1\n"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert target.read_text() == "a\n1\n"  # the old file is intact ...
    assert os.listdir(target.parent) == ["out.csv"]  # ... and no temporary file is left


def test_an_output_under_a_file_or_at_a_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        output_path(tmp_path / "file" / "sub" / "out.csv")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        output_path(tmp_path)


CELLS = st.sampled_from(["", "1", "-2.5", "1e308", "1e999", "NaN", "NA", "inf", "x", '"',
                         '"a,b"', " ", "0x1F", "\t", "é", "None", "nan"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=5),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_the_reader_raises_only_documented_errors(tmp_path, rows, newline):
    path = tmp_path / "fuzz.csv"
    path.write_text(newline.join(",".join(r) for r in rows), encoding="utf-8")
    try:
        frame = read_table(path)
    except (DataError, FileNotFoundError) as err:
        assert str(path) in str(err)
        return
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
