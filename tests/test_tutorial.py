"""The tutorial notebook, docs/tutorial.ipynb: it runs from a clean kernel without error,
and the committed copy keeps the outputs of a full run so that it reads on a web page.

The run uses NOTMIWAE_TUTORIAL_FAST=1 (small iteration and sample counts). It needs the
`notebook` extra (nbclient, nbformat, ipykernel) and Graphviz's `dot` for the drawings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"

nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra")


def test_committed_notebook_keeps_the_outputs_of_a_full_run():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    kinds = [kind for out in outputs for kind in out.get("data", {})]
    assert kinds.count("image/png") >= 10 and kinds.count("image/svg+xml") == 3, \
        "the figures and the three model drawings are stored"
    first = "".join(out.get("text", "") for out in code[0].outputs)
    assert first.startswith("full mode"), "the committed copy comes from a full run"


def test_notebook_runs_from_a_clean_kernel(tmp_path, monkeypatch):
    pytest.importorskip("ipykernel", reason="needs the notebook extra")
    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra")
    if shutil.which("dot") is None:
        pytest.skip("needs the Graphviz program (apt-get install graphviz)")
    monkeypatch.setenv("NOTMIWAE_TUTORIAL_FAST", "1")  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # start from nothing: no stored outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "".join(out.get("text", "") for out in code[0].outputs).startswith("fast mode")
