import json

import nbformat
import pytest

from deblurlab import run


def make_notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "deblurlab", "display_name": "Python (deblurlab)", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_failing_notebook_stops_the_run_naming_notebook_cell_and_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    notebook = tmp_path / "99_broken.ipynb"
    make_notebook(notebook, ["x = 1", "raise ValueError('bad parameter: sigma=-1')"])
    (tmp_path / "out" / "report").mkdir(parents=True)
    stale = tmp_path / "out" / "report" / "report.html"
    stale.write_text("old report")
    assert run.main(["--profile", "smoke", str(notebook)]) == 1
    err = capsys.readouterr().err
    assert "99_broken.ipynb failed in cell" in err and "ValueError: bad parameter: sigma=-1" in err
    assert not stale.exists()  # a stale report never survives a failed run


def test_store_checked_outputs_copies_only_checked_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    notebook = tmp_path / "98_checked.ipynb"
    make_notebook(notebook, ["# NBVAL_CHECK_OUTPUT\nprint('params: 42')", "print('noise')"])
    assert run.main(["--profile", "smoke", "--no-report", "--store-checked-outputs", str(notebook)]) == 0
    cells = nbformat.read(notebook, as_version=4).cells
    assert cells[1].outputs[0]["text"] == "params: 42\n"
    assert cells[2].outputs == []
    timings = json.loads((tmp_path / "out" / "report" / "results" / "notebooks.json").read_text())
    assert timings["98_checked.ipynb"]["profile"] == "smoke"


def test_unknown_notebook_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        run.main([str(tmp_path / "missing.ipynb")])
