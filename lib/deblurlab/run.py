"""Run the study: execute notebooks with papermill, keep the executed copies, write the
cross-chapter tables, then rebuild the report.

    python -m deblurlab.run --profile default               # every notebook, the tables, the report
    python -m deblurlab.run --profile smoke notebooks/01_resunet.ipynb
    python -m deblurlab.run --fresh                         # forget checkpoints of this profile
    python -m deblurlab.run --profile smoke --store-checked-outputs   # refresh nbval's expectations
    python -m deblurlab.run --report-only                   # no notebook: the tables, the report
    python -m deblurlab.run --merge A B --out C             # merge outputs A and B into C, then
                                                            # as --report-only (make test)

Executed notebooks go to report/notebooks/ (as .ipynb and .html). A failing notebook stops the run
with its name, the failing cell and the error, and no report is built: the old one was removed at
the start, so a stale report can never pass for a fresh one.

After the notebooks the runner writes every table that spans chapters (the findings scorecard
refreshed from every chapter's results, the CIFAR-10 summary, the speed tables), then builds the
report in a child process (``python -m deblurlab.report``), which only reads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .core.paths import REPO_ROOT, output_root, runs_dir
from .core.results import read_results, write_results
from .kernel import KERNEL_NAME, ensure_kernel
from .training.profiles import PROFILES

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook raised while running."""


def executed_dir() -> Path:
    """The folder executed notebooks are written to, created if missing."""
    path = output_root() / "report" / "notebooks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def all_notebooks() -> list[Path]:
    """The chapter notebooks (``notebooks/NN_*.ipynb``), in order."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _failure_message(notebook: Path, error: Exception) -> str:
    cell = getattr(error, "exec_count", None)
    ename, evalue = (
        getattr(error, "ename", type(error).__name__),
        getattr(error, "evalue", str(error)),
    )
    where = f"cell [{cell}]" if cell is not None else "a cell"
    return f"{notebook.name} failed in {where}: {ename}: {evalue}"


def execute_notebook(notebook: Path, profile: str, parameters: dict | None = None) -> dict:
    """Execute one notebook into report/notebooks/, export it to HTML, return its timing."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out = executed_dir() / notebook.name
    params = {"profile": profile, **(parameters or {})}
    print(f"==> {notebook.name} (profile {profile})", flush=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(out),
            parameters=params,
            kernel_name=KERNEL_NAME,
            cwd=str(notebook.parent),
            progress_bar=sys.stderr.isatty(),
            log_output=False,
        )
    except Exception as error:  # noqa: BLE001 - papermill raises many kinds; all are fatal here
        raise NotebookFailed(
            _failure_message(notebook, error) + f"\nExecuted copy: {out}"
        ) from error
    seconds = time.perf_counter() - start
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
    out.with_suffix(".html").write_text(html)
    print(f"    done in {seconds:.0f} s -> {out.relative_to(output_root())}", flush=True)
    return {
        "notebook": notebook.name,
        "seconds": round(seconds, 1),
        "profile": profile,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def store_checked_outputs(executed: Path, source: Path) -> int:
    """Copy the outputs of ``# NBVAL_CHECK_OUTPUT`` cells from an executed copy into the source
    notebook, where nbval reads its expectations; other cells stay output-free.

    Returns: the number of cells stored."""
    import nbformat

    ran = {
        cell.source: cell
        for cell in nbformat.read(executed, as_version=4).cells
        if cell.cell_type == "code"
    }
    notebook = nbformat.read(source, as_version=4)
    stored = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(CHECK_MARK) and cell.source in ran:
            cell.outputs = ran[cell.source].outputs
            cell.execution_count = ran[cell.source].execution_count  # nbval skips "unrun" cells
            stored += 1
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, source)
    return stored


def record_timing(entry: dict) -> None:
    """Add one notebook's timing (from ``execute_notebook``) to report/results/notebooks.json."""
    timings = read_results("notebooks") or {}
    timings[entry["notebook"]] = entry
    write_results("notebooks", dict(sorted(timings.items())))


def forget_runs(profile: str) -> None:
    """Delete the checkpoints of every run of ``profile`` (runs/*-<profile>)."""
    for run in runs_dir().glob(f"*-{profile}"):
        shutil.rmtree(run)
        print(f"removed checkpoints {run}")


# --------------------------------------------------------------- the tables, then the report

GENERATED = ("figures", "report/tables", "report/results")


def merge_outputs(sources: list[Path], dest: Path) -> None:
    """Copy the figures, tables and results of several output folders (one per test worker) into
    ``dest``; a file that two folders both hold must be the same chapter's, so the later one
    wins."""
    for source in sources:
        for sub in GENERATED:
            if (Path(source) / sub).is_dir():
                shutil.copytree(Path(source) / sub, Path(dest) / sub, dirs_exist_ok=True)


def write_tables(data_dir=None) -> None:
    """Write every table that spans chapters from the results in the output folder: the CIFAR-10
    summary, the findings scorecard refreshed from every chapter's results (when notebook 08 ran
    here), and the speed chapter's tables. ``data_dir``: the CIFAR-10 data, as the notebooks'.

    Raises FileNotFoundError when no CIFAR-10 chapter's results are there."""
    from . import findings
    from .perf.tables import speed_tables
    from .studies.cifar.results import summary_table

    summary_table()
    findings.refresh(data_dir)
    speed_tables()


def _report(*args: str) -> int:
    """Run ``python -m deblurlab.report`` with ``args`` on this output folder; its exit status."""
    env = {**os.environ, "DEBLURLAB_OUTPUT_DIR": str(output_root())}
    return subprocess.run([sys.executable, "-m", "deblurlab.report", *args], env=env).returncode


def remove_report() -> None:
    """Delete the old report (HTML and PDF) of this output folder."""
    if _report("--clean"):
        raise RuntimeError("python -m deblurlab.report --clean failed")


def tables_and_report(data_dir=None) -> int:
    """Write the tables (``write_tables``), then build the report; 0 if both succeeded."""
    try:
        write_tables(data_dir)
    except FileNotFoundError as error:
        print(f"report build failed: {error}", file=sys.stderr)
        return 1
    return _report()


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    parser.add_argument("--profile", default="default", choices=PROFILES)
    parser.add_argument(
        "--fresh", action="store_true", help="delete this profile's checkpoints first"
    )
    parser.add_argument("--no-report", action="store_true", help="skip the tables and the report")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run no notebook: write the tables from the outputs already generated, "
        "then build the report",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="merge these output folders (e.g. test workers') into the output folder, "
        "then as --report-only",
    )
    parser.add_argument(
        "--out", type=Path, help="output folder (default: $DEBLURLAB_OUTPUT_DIR or the checkout)"
    )
    parser.add_argument(
        "--store-checked-outputs",
        action="store_true",
        help="copy the outputs of # NBVAL_CHECK_OUTPUT cells into the source notebooks",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra notebook parameter, e.g. -p data_dir=/data/cifar-10-batches-py",
    )
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.parameter)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        os.environ["DEBLURLAB_OUTPUT_DIR"] = str(args.out.resolve())
    if args.merge or args.report_only:
        if args.notebooks:
            parser.error("--report-only and --merge run no notebook")
        remove_report()
        if args.merge:
            merge_outputs([d for d in args.merge if d.resolve() != output_root()], output_root())
        return tables_and_report(extra.get("data_dir"))

    notebooks = [nb.resolve() for nb in args.notebooks] or all_notebooks()
    missing = [str(nb) for nb in notebooks if not nb.exists()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    ensure_kernel()
    remove_report()
    if args.fresh:
        forget_runs(args.profile)
    started = time.perf_counter()
    for notebook in notebooks:
        try:
            record_timing(execute_notebook(notebook, args.profile, extra))
            if args.store_checked_outputs:
                count = store_checked_outputs(executed_dir() / notebook.name, notebook)
                print(f"    stored the outputs of {count} checked cell(s) in {notebook.name}")
        except NotebookFailed as failure:
            print(
                f"\nERROR: {failure}\nNo report was built. Fix the error and run again; finished "
                "training runs are kept and will be loaded, not retrained.",
                file=sys.stderr,
            )
            return 1
    print(f"All {len(notebooks)} notebooks ran in {time.perf_counter() - started:.0f} s.")
    if args.no_report:
        return 0
    return tables_and_report(extra.get("data_dir"))


if __name__ == "__main__":
    sys.exit(main())
