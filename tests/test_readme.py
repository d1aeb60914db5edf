"""The README's Python snippets run as written (excerpts of the package's own code, whose
first line says "# from ...", are skipped). Only the iteration and sample counts are cut,
so that the whole file runs in seconds: each count below is replaced before running."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SHORTER = {"iterations=20_000": "iterations=30", "iterations=2_000": "iterations=30",
           "num_samples=1_000": "num_samples=20", "num_samples=10_000": "num_samples=20",
           "m=100, warmup=400, thin=5": "m=4, warmup=3, thin=1"}


def snippets() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return [b for b in blocks if not b.startswith("# from ")]


def test_the_readme_has_runnable_snippets():
    assert len(snippets()) >= 4


@pytest.mark.parametrize("index", range(len(snippets())))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    code = snippets()[index]
    for long, short in SHORTER.items():
        code = code.replace(long, short)
    monkeypatch.chdir(tmp_path)  # files the snippet writes land here
    exec(compile(code, f"README.md snippet {index}", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("name", ["NotMIWAEImputer", "ModelConfig", "TrainConfig"])
def test_examples_in_the_public_docstrings_run(name):
    import doctest

    import notmiwae

    obj = getattr(notmiwae, name)
    tests = doctest.DocTestFinder().find(obj, name, globs=vars(notmiwae).copy())
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert sum(len(t.examples) for t in tests) > 0
    assert runner.failures == 0


def excerpts() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return [b for b in blocks if b.startswith("# from ")]


def test_the_readme_quotes_the_program():
    assert len(excerpts()) == 2  # the model's core, and the latent mask's lines


def _code(line: str) -> str:
    """A line without indentation and without a comment at its end (two spaces, #)."""
    return re.sub(r"\s{2,}#.*$", "", line).strip()


@pytest.mark.parametrize("index", range(len(excerpts())))
def test_readme_excerpts_are_the_package_code(index):
    """An excerpt quotes its file: its lines, stripped of indentation and end-of-line
    comments, appear there in the same order ("..." stands for lines left out)."""
    first, *lines = excerpts()[index].splitlines()
    path = README.parent / re.match(r"# from (\S+)", first).group(1)
    source = [_code(line) for line in path.read_text(encoding="utf-8").splitlines()]
    at = 0
    for line in (_code(line) for line in lines):
        if line in ("", "..."):
            continue
        assert line in source[at:], f"{path.name} has no line {line!r} after line {at}"
        at = source.index(line, at) + 1


def test_the_readme_shows_the_paper_table_as_rendered_from_the_runs():
    """The README's Table 1 (ours / the paper's) is results/uci/paper_table.md's table,
    as `python -m notmiwae.experiments.paper` last rendered it from runs.csv."""
    import pandas as pd

    from notmiwae.experiments import paper

    folder = README.parent / "results" / "uci"
    rendered = (folder / "paper_table.md").read_text("utf-8")
    fresh = paper.markdown(paper.compare(pd.read_csv(folder / "runs.csv")))
    table = [line for line in rendered.splitlines() if line.startswith("|")]
    assert table == [line for line in fresh.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 11  # header, rule, the paper's eleven rows
    assert "\n".join(table) in README.read_text(encoding="utf-8")


def test_the_readme_shows_the_coverage_glance_table_as_rendered_from_the_runs():
    """The README's coverage table is the one `coverage_report` renders from
    results/coverage's CSVs."""
    from notmiwae.experiments import coverage_report
    from notmiwae.inference.checks import to_markdown

    _, summary, _ = coverage_report.load(README.parent / "results" / "coverage")
    table = to_markdown(coverage_report.glance_table(summary)).strip()
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- Coverage: results/coverage/README.md -->\n")
    end = text.index("<!-- end of coverage -->", start)
    assert text[start:end].split("\n", 1)[1].strip() == table
