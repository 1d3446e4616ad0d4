import json

import nbformat
import pytest

from deblurlab import run


def make_notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "deblurlab",
        "display_name": "Python (deblurlab)",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('profile = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_failing_notebook_stops_the_run_naming_notebook_cell_and_error(
    tmp_path, monkeypatch, capsys
):
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
    assert (
        run.main(["--profile", "smoke", "--no-report", "--store-checked-outputs", str(notebook)])
        == 0
    )
    cells = nbformat.read(notebook, as_version=4).cells
    assert cells[1].outputs[0]["text"] == "params: 42\n"
    assert cells[2].outputs == []
    timings = json.loads((tmp_path / "out" / "report" / "results" / "notebooks.json").read_text())
    assert timings["98_checked.ipynb"]["profile"] == "smoke"


def test_unknown_notebook_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        run.main([str(tmp_path / "missing.ipynb")])


def test_merge_outputs_gathers_each_workers_files(tmp_path):
    for worker, name in (("gw0", "a"), ("gw1", "b")):
        for sub in run.GENERATED:
            (tmp_path / worker / sub).mkdir(parents=True)
            (tmp_path / worker / sub / f"{name}.txt").write_text(worker)
    run.merge_outputs([tmp_path / "gw0", tmp_path / "gw1"], tmp_path / "merged")
    for sub in run.GENERATED:
        assert sorted(p.name for p in (tmp_path / "merged" / sub).iterdir()) == ["a.txt", "b.txt"]


def test_merge_writes_the_tables_from_the_merged_outputs_then_builds_the_report(
    tmp_path, monkeypatch
):
    """make test's last line: merge the workers' outputs, write every table, then build."""
    from deblurlab.core.results import read_results, write_results

    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / worker))
        write_results(f"chapter_{worker}", {"worker": worker})
    calls = []

    def write_tables(data_dir=None):
        calls.append(("tables", read_results("chapter_gw0"), read_results("chapter_gw1"), data_dir))

    monkeypatch.setattr(run, "write_tables", write_tables)
    monkeypatch.setattr(run, "_report", lambda *args: calls.append(("report", *args)) or 0)
    out = tmp_path / "merged"
    assert (
        run.main(
            [
                "--merge",
                str(tmp_path / "gw0"),
                str(tmp_path / "gw1"),
                "--out",
                str(out),
                "-p",
                "data_dir=/data/cifar",
            ]
        )
        == 0
    )
    assert calls == [
        ("report", "--clean"),
        ("tables", {"worker": "gw0"}, {"worker": "gw1"}, "/data/cifar"),
        ("report",),
    ]
    assert run.output_root() == out.resolve()

    calls.clear()
    assert run.main(["--report-only"]) == 0
    assert [c[0] for c in calls] == ["report", "tables", "report"]
    with pytest.raises(SystemExit):
        run.main(["--report-only", "notebooks/01_resunet.ipynb"])


def test_no_report_is_built_without_chapter_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    built = []
    monkeypatch.setattr(run, "_report", lambda *args: built.append(args) or 0)
    assert run.tables_and_report() == 1
    assert "no CIFAR-10 chapter results" in capsys.readouterr().err and built == []


def test_the_runner_builds_the_report_in_a_child_process(tmp_path, monkeypatch):
    """``python -m deblurlab.report`` on the runner's output folder (here: only --clean)."""
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    (tmp_path / "out" / "report").mkdir(parents=True)
    (tmp_path / "out" / "report" / "report.pdf").write_text("old")
    run.remove_report()
    assert not (tmp_path / "out" / "report" / "report.pdf").exists()
