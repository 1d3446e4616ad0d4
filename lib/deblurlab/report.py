"""Build report/report.html (self-contained) and report/report.pdf from report/report.md.

report.md is a Jinja2 template in pandoc markdown: a title block, a provenance box, then every
file of report/sections/ in name order (one file a chapter, so chapters never edit each other's
text). The text reads numbers from the results that the notebooks wrote (``results.<chapter>``)
and places generated material by stable name:

    {{ figure("resunet_training_curves", "Training curves of ResUNet1 and ResUNet3.") }}
    {{ table("resunet", "ResUNet on the held-out CIFAR-10 test set.") }}
    as {{ ref("resunet_training_curves") }} shows ...

Figures and tables are numbered in order of appearance. A missing figure, table or result stops
the build with a message naming the file and the notebook that makes it.

The report only reads: the notebooks and the runner (``deblurlab.run``) write every figure, table
and result first, so this module imports neither TensorFlow nor Keras and a rebuild takes seconds:

    python -m deblurlab.report                 # report/report.html and report/report.pdf
    python -m deblurlab.report --out DIR       # from the outputs under DIR
    python -m deblurlab.report --clean         # only remove the old report
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jinja2

from .core.paths import REPO_ROOT, figures_dir, output_root, results_dir, tables_dir
from .core.results import read_results
from .core.tables import conventions, specific_notes
from .runtime.provenance import today

TEMPLATE = REPO_ROOT / "report" / "report.md"
SECTIONS = REPO_ROOT / "report" / "sections"
STYLE = REPO_ROOT / "report" / "style.css"
# Tables set smaller and unjustified, so the widest results tables fit the page.
TYPST_PREAMBLE = (
    "#set figure(numbering: none)\n#set text(size: 10pt)\n#set par(justify: true)\n"
    "#show table: set text(size: 7.5pt)\n#show table: set par(justify: false)\n"
    "#set table(inset: 3pt)"
)


class ReportError(RuntimeError):
    """A problem in the report's sources, e.g. a figure or table placed twice or never placed."""


def report_paths() -> dict[str, Path]:
    """The report's files under the output folder: {"html": path, "pdf": path}."""
    base = output_root() / "report"
    return {"html": base / "report.html", "pdf": base / "report.pdf"}


def remove_report() -> None:
    """Delete the report's HTML and PDF, so that a stale report never passes for a fresh one."""
    for path in report_paths().values():
        path.unlink(missing_ok=True)


def load_results() -> dict:
    """Every result the notebooks and the runner wrote: {name: payload} of report/results/*.json."""
    return {path.stem: read_results(path.stem) for path in sorted(results_dir().glob("*.json"))}


class _Numbering:
    """Numbers figures and tables in order of appearance. The report renders twice: the first pass
    learns the order, the second cites numbers, so text may refer forward as well as back."""

    def __init__(
        self, image_root: str, numbers: dict[str, str] | None = None, linked: bool = False
    ):
        self.image_root = image_root
        self.known = numbers  # None during the first pass
        self.numbers: dict[str, str] = {}
        self.counts = {"figure": 0, "table": 0}
        self.conventions = _Conventions(conventions())
        self.linked = linked  # the first pass found the conventions section: footnotes link it

    def _place(self, kind: str, name: str) -> str:
        if name in self.numbers:
            raise ReportError(f"the report places {kind} {name!r} twice")
        self.counts[kind] += 1
        self.numbers[name] = f"{kind.capitalize()} {self.counts[kind]}"
        return self.numbers[name]

    def ref(self, name: str) -> str:
        if self.known is None:
            return "(ref)"
        if name not in self.known:
            raise ReportError(f"the report refers to {name!r}, which no figure() or table() places")
        return self.known[name]

    def figure(self, name: str, caption: str, width: str = "95%") -> str:
        path = figures_dir() / f"{name}.png"
        if not path.exists():
            raise ReportError(
                f"figure {path} is missing: run the notebook that saves "
                f"save_fig({name!r}) (python -m deblurlab.run)."
            )
        number = self._place("figure", name)
        return f"![{number}: {caption}]({self.image_root}/figures/{name}.png){{width={width}}}"

    def table(self, name: str, caption: str) -> str:
        path = tables_dir() / f"{name}.md"
        if not path.exists():
            raise ReportError(
                f"table {path} is missing: run the notebook that writes "
                f"write_table({name!r}) (python -m deblurlab.run)."
            )
        body, _, notes = path.read_text().strip().partition("\n\n")
        number = self._place("table", name)
        notes = specific_notes(notes)
        if self.linked:
            notes += " Metrics and intervals: [Conventions](#conventions)."
        return f"{body}\n\n: {number}: {caption}\n\n::: {{.table-note}}\n{notes}\n:::\n"


class _Conventions(dict):
    """The shared conventions, noting whether the template states them (a report without that
    section must not link to it: typst refuses a link to a missing label)."""

    stated = False

    def __getitem__(self, key):
        self.stated = True
        return super().__getitem__(key)


def _versus(value: float, ci, digits: int) -> str:
    """Where a published number lies against our 95% interval, in words."""
    low, high = ci
    where = "below" if value < low else "above" if value > high else "inside"
    return f"lies {where} our 95% interval ({low:.{digits}f} to {high:.{digits}f})"


def reference_sentence(chapter: dict, model: str) -> str:
    """What a model's shipped reference run shows in a chapter's results, in one or two sentences
    whose every comparison follows its interval."""
    entry = chapter["models"].get(model, {})
    ref = entry.get("reference_run") or {}
    if "metrics" not in ref:
        return (
            f"{model} has no shipped reference run ({ref.get('status', 'not run')}): "
            f"`python -m deblurlab.reference --models {model}` trains one."
        )
    m, ours, report = ref["metrics"], entry["metrics"], entry.get("reference") or {}
    text = (
        f"The reference run of {model} ({ref['epochs']} epochs, {ref['stopped']}; "
        f"{ref['train_seconds'] / 60:.0f} min of training on {ref['n_train']:,} images, "
        f"{ref['arithmetic']}, {ref['machine']}) scores MSE {m['mse']:.5f}, SSIM {m['ssim']:.4f} "
        f"and a PSNR of the mean MSE of {m['psnr_mean_mse']:.2f} dB on the same test images, "
        f"against {ours['mse']:.5f}, {ours['ssim']:.4f} and {ours['psnr_mean_mse']:.2f} dB for "
        "this run's model."
    )
    if report.get("mse") and m.get("mse_ci") and m.get("ssim_ci"):
        text += (
            f" The original report's MSE of {report['mse']} (on its own CIFAR-10 test images) "
            f"{_versus(report['mse'], m['mse_ci'], 5)}, and its SSIM of {report['ssim']} "
            f"{_versus(report['ssim'], m['ssim_ci'], 4)}."
        )
    return text


def render(image_root: str, extra: dict | None = None) -> str:
    """The report's markdown, with image paths under ``image_root``."""
    if not TEMPLATE.exists():
        raise ReportError(f"{TEMPLATE} is missing")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = lambda x, digits=1: f"{100 * x:.{digits}f}%"
    env.filters["num"] = lambda x, digits=2: f"{x:,.{digits}f}"
    env.tests["search"] = lambda value, pattern: pattern in str(value)
    sections = [f"sections/{path.name}" for path in sorted(SECTIONS.glob("*.md"))]
    results = load_results()
    numbers, linked = None, False
    for _ in range(2):
        numbering = _Numbering(image_root, numbers, linked)
        context = {
            "results": results,
            "sections": sections,
            "now": today(),
            "figure": numbering.figure,
            "table": numbering.table,
            "ref": numbering.ref,
            "reference_sentence": reference_sentence,
            "conventions": numbering.conventions,
            **(extra or {}),
        }
        try:
            text = env.get_template(TEMPLATE.name).render(**context)
        except jinja2.UndefinedError as error:
            raise ReportError(
                f"the report needs a result that no notebook wrote ({error}). "
                "Run every notebook: python -m deblurlab.run"
            ) from error
        numbers, linked = numbering.numbers, numbering.conventions.stated
    return text


def build_report() -> list[Path]:
    """Render the template and write the HTML and the PDF from the figures, tables and results
    already written (``python -m deblurlab.run`` writes the cross-chapter tables first).

    Returns: the paths of the HTML and the PDF."""
    import pypandoc
    import typst

    root = output_root()
    build = root / "report" / "build"
    build.mkdir(parents=True, exist_ok=True)
    paths = report_paths()

    html_md = build / "report.md"
    html_md.write_text(render(str(root)))
    args = [
        "--standalone",
        "--embed-resources",
        "--toc",
        "--number-sections",
        f"--css={STYLE}",
        f"--resource-path={root}",
    ]
    pypandoc.convert_file(str(html_md), "html5", outputfile=str(paths["html"]), extra_args=args)

    typst_md = build / "report-typst.md"
    typst_md.write_text(render(""))  # typst resolves "/figures/x.png" against its root
    typ = build / "report.typ"
    pypandoc.convert_file(
        str(typst_md),
        "typst",
        outputfile=str(typ),
        extra_args=[
            "--standalone",
            "--toc",
            "--number-sections",
            "-V",
            f"header-includes={TYPST_PREAMBLE}",
        ],
    )
    typst.compile(str(typ), output=str(paths["pdf"]), root=str(root))
    return [paths["html"], paths["pdf"]]


def main(argv=None) -> None:
    """``python -m deblurlab.report [--out DIR] [--clean]``: build (or only remove) the report."""
    parser = argparse.ArgumentParser(
        description="Build report/report.html and report.pdf from the "
        "figures, tables and results already generated (to write the "
        "tables first: python -m deblurlab.run --report-only)."
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder to build in (default: $DEBLURLAB_OUTPUT_DIR or the checkout)",
    )
    parser.add_argument("--clean", action="store_true", help="only remove the old report")
    args = parser.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        os.environ["DEBLURLAB_OUTPUT_DIR"] = str(args.out.resolve())
    if args.clean:
        remove_report()
        return
    try:
        built = build_report()
    except ReportError as error:
        raise SystemExit(f"report build failed: {error}") from None
    for path in built:
        print(path)


if __name__ == "__main__":
    main()
