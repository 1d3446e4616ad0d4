"""The report builder: numbering, cross-references, loud failures on missing material, and a
build that imports neither TensorFlow nor Keras."""

import subprocess
import sys

import pandas as pd
import pytest

from deblurlab import report
from deblurlab.core.results import write_results
from deblurlab.core.tables import write_table
from deblurlab.outputs.figures import save_fig
from deblurlab.perf.tables import speed_tables


@pytest.fixture
def template(tmp_path, monkeypatch):
    """A one-section report template in a temporary folder; returns a function that sets its
    text."""
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    sections = tmp_path / "sections"
    sections.mkdir()
    monkeypatch.setattr(report, "TEMPLATE", tmp_path / "report.md")
    monkeypatch.setattr(report, "SECTIONS", sections)
    (tmp_path / "report.md").write_text(
        "{% for section in sections %}{% include section %}\n{% endfor %}"
    )

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
    with pytest.raises(
        report.ReportError, match=r"figures/never_made\.png is missing.*deblurlab\.run"
    ):
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
    template(
        '{{ ref("second") }} follows {{ ref("first") }}.\n\n{{ figure("first", "One.") }}\n\n'
        '{{ table("scores", "Scores.") }}\n\n{{ figure("second", "Two.") }}'
    )
    text = report.render("/root")
    assert text.startswith("Figure 2 follows Figure 1.")
    assert "![Figure 1: One.](/root/figures/first.png)" in text and "Table 1: Scores." in text
    assert "Data: test." in text and "| a | 0.00100 |" in text


def test_the_report_states_the_conventions_once_and_footnotes_link_to_them(template):
    from deblurlab.core import stats
    from deblurlab.core.metrics import CONVENTION
    from deblurlab.core.tables import footnote

    prov = {"data": "ten images", "profile": "smoke", "date": "today", "commit": "abc"}
    prov["machine"] = "a test machine"
    frame = pd.DataFrame({"model": ["a"], "MSE": [0.001]})
    write_table("one", frame, f"{footnote(prov)} {stats.METHOD} Only in table one.")
    write_table("two", frame, stats.METHOD.replace("test images", "test frames"))
    template(
        "## Conventions\n{{ conventions.metrics }} {{ conventions.intervals }}\n\n"
        '{{ table("one", "One.") }}\n\n{{ table("two", "Two.") }}'
    )
    text = report.render("")
    assert text.count(CONVENTION) == 1 and text.count(stats.METHOD) == 1
    assert "test frames" not in text
    assert "Data: ten images. Profile: smoke." in text and "Only in table one." in text
    assert "on a test machine." in text
    assert text.count("[Conventions](#conventions)") == 2

    template('{{ table("one", "One.") }}')  # no conventions section: no link to a missing label
    assert "#conventions" not in report.render("")


# The child process: block tensorflow and keras, run `python -m deblurlab.report --clean` as the
# module itself, then build the HTML and PDF from the prepared template, and list what it loaded.
BLOCKED_BUILD = """
import importlib.abc
import runpy
import sys
from pathlib import Path

BLOCKED = ("tensorflow", "keras")


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"the report imports {name}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
template, sections, out = sys.argv[1:4]
sys.argv = ["deblurlab.report", "--out", out, "--clean"]
runpy.run_module("deblurlab.report", run_name="__main__", alter_sys=True)
from deblurlab import report

report.TEMPLATE, report.SECTIONS = Path(template), Path(sections)
report.main(["--out", out])
print("loaded:", sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED))
"""


def test_the_report_builds_without_tensorflow_or_keras(template, tmp_path):
    _figure("first")
    write_table("scores", pd.DataFrame({"model": ["a"], "MSE": [0.001]}), "Data: test.")
    write_results("chapter", {"psnr": 27.5})
    template(
        '{{ figure("first", "One.") }}\n\n{{ table("scores", "Scores.") }}\n\n'
        "The chapter scores {{ results.chapter.psnr }} dB."
    )
    out = tmp_path / "out"
    stale = report.report_paths()["html"]
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("stale")
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_BUILD, str(report.TEMPLATE), str(report.SECTIONS), str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout
    paths = report.report_paths()
    html = paths["html"].read_text()
    assert "The chapter scores 27.5 dB." in html and "Table 1: Scores." in html
    assert paths["pdf"].read_bytes().startswith(b"%PDF")


def test_the_blocker_of_that_test_catches_an_import(tmp_path):
    script = BLOCKED_BUILD.split("template, sections, out")[0] + "import keras\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0 and "the report imports keras" in done.stderr


def test_tuning_table_shows_every_machines_record_and_skips_quick_ones(tmp_path, monkeypatch):
    import json

    from deblurlab.core.paths import results_dir, tables_dir
    from deblurlab.runtime import compute

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    variant = {
        "train_images_per_s": 10.0,
        "infer_images_per_s": 30.0,
        "train_ratio": 1.0,
        "infer_ratio": 1.0,
    }
    record = {
        "device": "cpu",
        "date": "2026-01-01",
        "commit": "abc",
        "machine": "here",
        "settings": {"quick": False, "steps_per_execution": 1},
        "tuning": {
            "variants": {"reference": {"precision": "float32", "jit": False}},
            "models": {
                "m": {
                    "rounds": 3,
                    "batch_size": 32,
                    "reference": "reference",
                    "variants": {
                        "reference": variant,
                        "jit_compile": {**variant, "train_ratio": 1.3},
                    },
                }
            },
            "summary": {"m": {"jit_compile": {"train_ratio": 1.3}}},
        },
    }
    quick = {**record, "settings": {"quick": True}}
    monkeypatch.setattr(
        compute,
        "tuning_records",
        lambda: {"cpu-a-avx2": record, "cpu-b-avx512": record, "cpu-c-avx2": quick},
    )
    speed_tables()
    table = (tables_dir() / "tuning_cpu.md").read_text()
    assert "| cpu-a-avx2 | m | 32 | 10.00 | 1.30 |" in table and "| cpu-b-avx512 | m |" in table
    assert "cpu-c-avx2" not in table
    summary = json.loads((results_dir() / "tuning_cpu.json").read_text())
    assert [m["key"] for m in summary["machines"]] == ["cpu-a-avx2", "cpu-b-avx512"]

    monkeypatch.setattr(compute, "tuning_records", lambda: {"cpu-c-avx2": quick})
    speed_tables()
    assert not (results_dir() / "tuning_cpu.json").exists()


# --- the speed chapter in every state of the benchmark records (issue: a fresh clone has the kept
# tuning record but no benchmark record, and `make report` failed on a reference to a missing table)

BENCH_RECORD = {
    "device": "cpu",
    "date": "2026-01-01 10:00",
    "commit": "abc1234",
    "machine": "Test CPU (AVX2), 2 cores, no GPU",
    "settings": {"quick": False, "precision": "float32", "steps_per_execution": 1},
    "peaks": {
        "float32": {"flops_per_s": 70e9},
        "bfloat16": {"flops_per_s": 68e9},
        "bandwidth": {"bytes_per_s": 8.6e9},
    },
    "models": [
        {
            "name": "resunet1",
            "input_shape": [32, 32, 3],
            "batch_size": 32,
            "jit_compile": True,
            "forward_flops_per_image": 1.6e8,
            "train_images_per_s": 148.0,
            "train_ceiling_images_per_s": 250.0,
            "infer_images_per_s": 900.0,
            "train_frac_fp32_peak": 0.58,
            "bound": "thin channels",
        },
        {
            "name": "eddensenet",
            "input_shape": [32, 32, 3],
            "batch_size": 32,
            "jit_compile": False,
            "forward_flops_per_image": 3.0e8,
            "train_images_per_s": 25.6,
            "train_ceiling_images_per_s": 70.0,
            "infer_images_per_s": 200.0,
            "train_frac_fp32_peak": 0.38,
            "bound": "backward-heavy",
        },
    ],
    "targets": [{"met": False, "text": "ResUNet3 trains at 400 img/s"}],
}
TUNING_RECORD = {
    "device": "cpu",
    "date": "2026-01-01 11:00",
    "commit": "abc1234",
    "machine": "Test CPU (AVX2), 2 cores, no GPU",
    "settings": {"quick": False, "steps_per_execution": 1},
    "tuning": {
        "variants": {"reference": {"precision": "float32", "jit": False}},
        "models": {
            "resunet1": {
                "rounds": 3,
                "batch_size": 32,
                "reference": "reference",
                "variants": {
                    "reference": {"train_images_per_s": 100.0, "train_ratio": 1.0},
                    "jit_compile": {"train_images_per_s": 142.0, "train_ratio": 1.42},
                    "mixed_bfloat16": {"train_images_per_s": 20.0, "train_ratio": 0.2},
                    "steps_per_execution=10": {"train_images_per_s": 105.0, "train_ratio": 1.05},
                    "batch x4": {"train_images_per_s": 110.0, "train_ratio": 1.1},
                },
            }
        },
        "summary": {
            "resunet1": {
                "jit_compile": {"train_ratio": 1.42},
                "mixed_bfloat16": {"train_ratio": 0.2},
                "steps_per_execution=10": {"train_ratio": 1.05},
                "batch x4": {"train_ratio": 1.1},
            }
        },
    },
}


def _seed_run(seed, precision, mse):
    ci = {
        f"{m}_ci": [v * 0.9, v * 1.1]
        for m, v in (("mse", mse), ("psnr_mean_mse", 27.0), ("ssim", 0.9))
    }
    return {
        "seed": seed,
        "precision": precision,
        "epochs": 4,
        "train_seconds": 90.0,
        "test": {"mse": mse, "psnr_mean_mse": 27.0, "ssim": 0.9, **ci},
    }


def _seeds_record():
    from deblurlab import seeds

    runs = [_seed_run(s, "float32", 0.0027 + 0.00002 * s) for s in range(3)]
    runs += [_seed_run(s, "mixed_bfloat16", 0.00271 + 0.00002 * s) for s in range(3)]
    spread = {p: seeds.spread(runs, p) for p in ("float32", "mixed_bfloat16")}
    return {
        "model": "resunet1",
        "profile": "default",
        "n_test": 400,
        "data": "d",
        "date": "2026-01-01",
        "commit": "abc",
        "machine": "Test CPU",
        "runs": runs,
        "spread": spread,
        "precision_check": {
            "mixed_bfloat16": seeds.precision_verdict(spread["float32"], spread["mixed_bfloat16"])
        },
    }


SEEDS_RECORD = _seeds_record()


@pytest.mark.parametrize("state", ["neither", "tuning only", "benchmark only", "both"])
def test_speed_chapter_renders_in_every_state_of_the_records(state, tmp_path, monkeypatch):
    import json

    from section_render import use_only_section

    from deblurlab.core.paths import results_dir

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    use_only_section(tmp_path, monkeypatch, "35_speed.md")
    from deblurlab.runtime import compute

    has_tuning = state in ("tuning only", "both")
    monkeypatch.setattr(
        compute, "tuning_records", lambda: {"test-cpu-avx2": TUNING_RECORD} if has_tuning else {}
    )
    monkeypatch.setattr(
        compute,
        "seed_records",
        lambda: {("test-cpu-avx2", "resunet1"): SEEDS_RECORD} if state == "both" else {},
    )
    if state in ("benchmark only", "both"):
        (results_dir() / "bench_cpu.json").write_text(json.dumps(BENCH_RECORD))
    speed_tables()
    text = report.render("")
    has_bench = state in ("benchmark only", "both")
    assert ("| resunet1 |" in text) == (has_bench or has_tuning)
    assert ("The benchmark has not been run" in text) == (not has_bench)
    assert ("The tuning pass has not been run" in text) == (not has_tuning)
    assert "(ref)" not in text
    assert ("No seed/precision record is kept yet" in text) == (state != "both")
    if state == "both":
        words = " ".join(text.split())
        assert (
            "changes the mean MSE by +0.00001" in words
            and "within the float32 seed spread" in words
        )
