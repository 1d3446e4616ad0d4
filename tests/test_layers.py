"""The package reads in layers: no import runs upward, every module has a layer, none is long.

Layers, bottom to top (a module may import its own layer and the layers below it):

1. foundations: paths, metrics, compute, provenance, the tables helpers, stats, results, the
   cluster (its description, engines, collectives and local launcher)
2. data and models
3. train and inference (and what needs only them: profiles, the zoo, the backend check, the ONNX
   engine and converter)
4. the studies, the chapters' analyses, baselines, comparison, perf, findings
5. figures and diagrams
6. the runner (the notebooks sit here too, outside the package)
7. the report, which only reads
"""

import ast
from pathlib import Path

import pytest

import deblurlab

PACKAGE = Path(deblurlab.__file__).resolve().parent
MAX_LINES = 400

LAYERS = {
    1: [
        "deblurlab",
        "paths",
        "metrics",
        "compute",
        "provenance",
        "tables",
        "stats",
        "results",
        "kernel",
        "cluster",
        "collectives",
        "keras_mwms",
        "launch",
    ],
    2: ["data", "models"],
    3: [
        "train",
        "checkpoints",
        "losses",
        "inference",
        "profiles",
        "zoo",
        "backend_check",
        "onnx_engine",
        "onnx_convert",
    ],
    4: [
        "cifar_study",
        "cifar_results",
        "motion_study",
        "motion_results",
        "motion_compare",
        "motion_compare_results",
        "cifar_analysis",
        "patch_analysis",
        "baselines",
        "comparison",
        "comparison_results",
        "perf",
        "findings",
        "reference",
        "motion_recipes",
        "deblur",
        "deblur_models",
        "export",
        "seeds",
    ],
    5: ["figures", "diagrams", "diagram_blocks", "motion_figures"],
    6: ["run"],
    7: ["report"],
}
LAYER_OF = {
    ("deblurlab" if name == "deblurlab" else f"deblurlab.{name}"): layer
    for layer, names in LAYERS.items()
    for name in names
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int | None:
    """The layer of ``module``: that of its longest declared prefix (a package's layer covers its
    modules)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = LAYER_OF.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported deblurlab module) for every import of ``path``, at module level or inside a
    function; ``from . import name`` counts as the submodule ``name`` where there is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "deblurlab"
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "deblurlab":
                target = node.module
            else:
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            found += [(node.lineno, sub) for sub in subs] or [(node.lineno, target)]
    return found


def test_every_library_module_has_a_layer():
    missing = sorted(m for m in library_modules() if layer(m) is None)
    assert not missing, f"declare the layer of {missing} in tests/test_layers.py (LAYERS)"


def test_no_import_runs_upward():
    modules = library_modules()
    upward = []
    for module, path in modules.items():
        own = layer(module)
        if own is None:
            continue
        for line, target in imports_of(module, path, set(modules)):
            theirs = layer(target)
            if theirs is not None and theirs > own:
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} ({module}, layer {own}) imports "
                    f"{target} (layer {theirs})"
                )
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_library_module_is_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in library_modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_scan_sees_function_level_and_relative_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "from .. import stats as S\n\ndef f():\n    from ..report import render\n"
        "    import deblurlab.run\n    from .claims import CLAIMS\n"
    )
    known = {"deblurlab.stats", "deblurlab.report", "deblurlab.run", "deblurlab.findings.claims"}
    found = imports_of("deblurlab.findings.x", source, known)
    assert found == [
        (1, "deblurlab.stats"),
        (4, "deblurlab.report"),
        (5, "deblurlab.run"),
        (6, "deblurlab.findings.claims"),
    ]
    assert [layer(m) for _, m in found] == [1, 7, 6, 4]


@pytest.mark.parametrize(
    "module, expected",
    [
        ("deblurlab.models.srndeblur", 2),
        ("deblurlab.perf.tables", 4),
        ("deblurlab.findings", 4),
        ("deblurlab", 1),
    ],
)
def test_a_package_gives_its_layer_to_its_modules(module, expected):
    assert layer(module) == expected
