"""The notebooks run top to bottom against the installed packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path) -> None:
    """Every cell of the notebook runs without error in a fresh kernel."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # Run in a copy of the notebooks folder so outputs stay out of the repo.
    work = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", work)
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    notebook = nbformat.read(work / path.name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()
    assert any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_there_is_a_notebook() -> None:
    """The notebooks folder holds at least one notebook."""
    assert NOTEBOOKS
