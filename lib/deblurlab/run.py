"""Run the study: execute notebooks with papermill, keep the executed copies, rebuild the report.

    python -m deblurlab.run --profile default               # every notebook, then the report
    python -m deblurlab.run --profile smoke notebooks/01_resunet.ipynb
    python -m deblurlab.run --fresh                         # forget checkpoints of this profile
    python -m deblurlab.run --profile smoke --store-checked-outputs   # refresh nbval's expectations

Executed notebooks go to report/notebooks/ (as .ipynb and .html). A failing notebook stops the run
with its name, the failing cell and the error, and no report is built: the old one was removed at
the start, so a stale report can never pass for a fresh one.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from .kernel import KERNEL_NAME, ensure_kernel
from .paths import REPO_ROOT, output_root, results_dir, runs_dir
from .profiles import PROFILES

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


class NotebookFailed(RuntimeError):
    pass


def executed_dir() -> Path:
    path = output_root() / "report" / "notebooks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def all_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _failure_message(notebook: Path, error: Exception) -> str:
    cell = getattr(error, "exec_count", None)
    ename, evalue = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
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
        papermill.execute_notebook(str(notebook), str(out), parameters=params, kernel_name=KERNEL_NAME,
                                   cwd=str(notebook.parent), progress_bar=sys.stderr.isatty(),
                                   log_output=False)
    except Exception as error:  # noqa: BLE001 - papermill raises many kinds; all are fatal here
        raise NotebookFailed(_failure_message(notebook, error) + f"\nExecuted copy: {out}") from error
    seconds = time.perf_counter() - start
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
    out.with_suffix(".html").write_text(html)
    print(f"    done in {seconds:.0f} s -> {out.relative_to(output_root())}", flush=True)
    return {"notebook": notebook.name, "seconds": round(seconds, 1), "profile": profile,
            "finished": time.strftime("%Y-%m-%d %H:%M")}


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def store_checked_outputs(executed: Path, source: Path) -> int:
    """Copy the outputs of ``# NBVAL_CHECK_OUTPUT`` cells from an executed copy into the source
    notebook, where nbval reads its expectations; other cells stay output-free. Returns the count."""
    import nbformat

    ran = {cell.source: cell for cell in nbformat.read(executed, as_version=4).cells if cell.cell_type == "code"}
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
    path = results_dir() / "notebooks.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[entry["notebook"]] = entry
    path.write_text(json.dumps(timings, indent=1, sort_keys=True))


def forget_runs(profile: str) -> None:
    for run in runs_dir().glob(f"*-{profile}"):
        shutil.rmtree(run)
        print(f"removed checkpoints {run}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deblurlab.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    parser.add_argument("--profile", default="default", choices=PROFILES)
    parser.add_argument("--fresh", action="store_true", help="delete this profile's checkpoints first")
    parser.add_argument("--no-report", action="store_true", help="skip the report build")
    parser.add_argument("--store-checked-outputs", action="store_true",
                        help="copy the outputs of # NBVAL_CHECK_OUTPUT cells into the source notebooks")
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="extra notebook parameter, e.g. -p data_dir=/data/cifar-10-batches-py")
    args = parser.parse_args(argv)

    from .report import build_report, remove_report

    notebooks = [nb.resolve() for nb in args.notebooks] or all_notebooks()
    missing = [str(nb) for nb in notebooks if not nb.exists()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    extra = dict(item.split("=", 1) for item in args.parameter)
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
            print(f"\nERROR: {failure}\nNo report was built. Fix the error and run again; finished "
                  "training runs are kept and will be loaded, not retrained.", file=sys.stderr)
            return 1
    print(f"All {len(notebooks)} notebooks ran in {time.perf_counter() - started:.0f} s.")
    if not args.no_report:
        for path in build_report():
            print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
