"""Every lesson in notebooks/ runs top to bottom without an error cell, and its
"predict, then check" cells really assert."""
from __future__ import annotations

import time

import pytest

from nbhelpers import LESSONS, NOTEBOOKS, execute


def test_the_eight_lessons_are_there():
    assert [p.name[:2] for p in LESSONS] == [f"{i:02d}" for i in range(1, 9)], [p.name for p in LESSONS]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_without_an_error_cell(path):
    began = time.perf_counter()
    nb = execute(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "Predict, then check" in c.source)
    checks = [c for c in nb.cells[first:] if c.cell_type == "code" and "my_answer =" in c.source
              and "assert " in c.source and "my_answer" in c.source.split("assert ", 1)[1]]
    assert len(checks) >= 3, f"{path.name} should end with at least three checked exercises"
    assert all(c.cell_type != "code" or c in checks for c in nb.cells[first:]), "only checked exercises at the end"
    assert time.perf_counter() - began < 120, f"{path.name} took over two minutes"


def test_a_wrong_prediction_fails_the_check(tmp_path):
    """The exercises are real assertions: change an answer and the notebook stops there."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOKS / "01_cross_correlation.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "my_answer = 37" in c.source)
    cell.source = cell.source.replace("my_answer = 37", "my_answer = 36")
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, broken)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="AssertionError"):
        execute(broken)
