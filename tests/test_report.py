"""The report builder: numbering, cross-references, and loud failures on missing material."""
import pandas as pd
import pytest

from deblurlab import report
from deblurlab.figures import save_fig
from deblurlab.tables import write_table


@pytest.fixture
def template(tmp_path, monkeypatch):
    """A one-section report template in a temporary folder; returns a function that sets its text."""
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    sections = tmp_path / "sections"
    sections.mkdir()
    monkeypatch.setattr(report, "TEMPLATE", tmp_path / "report.md")
    monkeypatch.setattr(report, "SECTIONS", sections)
    (tmp_path / "report.md").write_text("{% for section in sections %}{% include section %}\n{% endfor %}")

    def write(text):
        (sections / "10_chapter.md").write_text(text)

    return write


def _figure(name):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_fig(name, fig)
    plt.close(fig)


def test_missing_figure_stops_the_build_naming_the_file_and_the_fix(template):
    template('{{ figure("never_made", "A figure no notebook saves.") }}')
    with pytest.raises(report.ReportError, match=r"figures/never_made\.png is missing.*deblurlab\.run"):
        report.render("")


def test_missing_table_and_unknown_reference_stop_the_build(template):
    template('{{ table("never_written", "A table.") }}')
    with pytest.raises(report.ReportError, match=r"tables/never_written\.md is missing"):
        report.render("")
    template('see {{ ref("nothing_here") }}')
    with pytest.raises(report.ReportError, match="nothing_here"):
        report.render("")


def test_missing_result_names_the_runner(template):
    template("{{ results.no_such_chapter.models }}")
    with pytest.raises(report.ReportError, match="no notebook wrote.*deblurlab.run"):
        report.render("")


def test_figures_and_tables_are_numbered_in_order_and_referenced_forward(template):
    _figure("first")
    _figure("second")
    write_table("scores", pd.DataFrame({"model": ["a"], "MSE": [0.001]}), "Data: test.")
    template('{{ ref("second") }} follows {{ ref("first") }}.\n\n{{ figure("first", "One.") }}\n\n'
             '{{ table("scores", "Scores.") }}\n\n{{ figure("second", "Two.") }}')
    text = report.render("/root")
    assert text.startswith("Figure 2 follows Figure 1.")
    assert "![Figure 1: One.](/root/figures/first.png)" in text and "Table 1: Scores." in text
    assert "Data: test." in text and "| a | 0.00100 |" in text


def test_merge_outputs_gathers_each_workers_files(tmp_path):
    for worker, name in (("gw0", "a"), ("gw1", "b")):
        for sub in report.GENERATED:
            (tmp_path / worker / sub).mkdir(parents=True)
            (tmp_path / worker / sub / f"{name}.txt").write_text(worker)
    report.merge_outputs([tmp_path / "gw0", tmp_path / "gw1"], tmp_path / "merged")
    for sub in report.GENERATED:
        assert sorted(p.name for p in (tmp_path / "merged" / sub).iterdir()) == ["a.txt", "b.txt"]


def test_speed_tables_come_from_the_benchmark_records_and_skip_quick_ones(tmp_path, monkeypatch):
    import json

    from deblurlab.paths import results_dir, tables_dir

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    variant = {"train_images_per_s": 10.0, "infer_images_per_s": 30.0, "train_ratio": 1.0, "infer_ratio": 1.0}
    record = {"device": "cpu", "date": "2026-01-01", "commit": "abc", "machine": "here",
              "settings": {"quick": False, "steps_per_execution": 1},
              "tuning": {"variants": {"reference": {"precision": "float32", "jit": False}},
                         "models": {"m": {"rounds": 3, "batch_size": 32, "reference": "reference",
                                          "variants": {"reference": variant,
                                                       "jit_compile": {**variant, "train_ratio": 1.3}}}}}}
    (results_dir() / "bench_cpu_tuning.json").write_text(json.dumps(record))
    report.speed_tables()
    assert "| m | 32 | 10.00 | 1.30 |" in (tables_dir() / "tuning_cpu.md").read_text()

    (tables_dir() / "tuning_cpu.md").unlink()
    record["settings"]["quick"] = True
    (results_dir() / "bench_cpu_tuning.json").write_text(json.dumps(record))
    report.speed_tables()
    assert not (tables_dir() / "tuning_cpu.md").exists()
