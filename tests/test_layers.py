"""The package reads in layers: no import runs upward, none runs in a circle, every module has a
layer, none is long.

Layers, bottom to top, one a package (a module may import its own layer and the layers below it):

1. ``core``: paths, this machine's CPU and backend, metrics, statistics, tables, results on disk
2. ``runtime``: the compute set-up, the cluster of workers and their collectives, provenance
3. ``data``, ``models`` and ``outputs`` (figures and diagrams)
4. ``training``: training, checkpoints, profiles, the zoo, inference, ONNX, the backend check
5. ``deblur``: the deblurring tool, the networks it runs, their ONNX export
6. ``perf``: the benchmark (the chapters use its FLOP counter and timers)
7. ``studies``: the chapters' studies (``cifar``, ``motion``, ``comparison``)
8. ``findings``: the scorecard over every chapter
9. the entry points, the package's top-level modules: run, report, reference, seeds, export,
   motion_recipes, kernel (the notebooks sit here too, outside the package)
"""

import ast
from pathlib import Path

import pytest

import deblurlab

PACKAGE = Path(deblurlab.__file__).resolve().parent
MAX_LINES = 400

# Each subpackage, or top-level module, of deblurlab and its layer ("" is deblurlab/__init__.py).
LAYERS = {
    1: ["", "core"],
    2: ["runtime"],
    3: ["data", "models", "outputs"],
    4: ["training"],
    5: ["deblur"],
    6: ["perf"],
    7: ["studies"],
    8: ["findings"],
    9: ["run", "report", "reference", "seeds", "export", "motion_recipes", "kernel"],
}
LAYER_OF = {
    ("deblurlab" if name == "" else f"deblurlab.{name}"): layer
    for layer, names in LAYERS.items()
    for name in names
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int | None:
    """The layer of ``module``: that of its longest declared prefix below ``deblurlab`` (a package's
    layer covers its modules; the package's own ``__init__`` is declared alone)."""
    if module == "deblurlab":
        return LAYER_OF[module]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
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


def import_graph() -> dict[str, set[str]]:
    """Every library module and the library modules it imports (module level or in a function)."""
    modules = library_modules()
    return {
        module: {target for _, target in imports_of(module, path, set(modules))} - {module}
        for module, path in modules.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of two or more modules
    (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    found = circles(import_graph())
    assert not found, "modules that import each other, directly or round a circle:\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


def test_the_circle_scan_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_scan_sees_function_level_and_relative_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "from ..core import stats as S\n\ndef f():\n    from ..report import render\n"
        "    import deblurlab.run\n    from .claims import CLAIMS\n"
    )
    known = {
        "deblurlab.core.stats",
        "deblurlab.report",
        "deblurlab.run",
        "deblurlab.findings.claims",
    }
    found = imports_of("deblurlab.findings.x", source, known)
    assert found == [
        (1, "deblurlab.core.stats"),
        (4, "deblurlab.report"),
        (5, "deblurlab.run"),
        (6, "deblurlab.findings.claims"),
    ]
    assert [layer(m) for _, m in found] == [1, 9, 9, 8]


@pytest.mark.parametrize(
    "module, expected",
    [
        ("deblurlab.models.srndeblur", 3),
        ("deblurlab.perf.tables", 6),
        ("deblurlab.findings", 8),
        ("deblurlab.studies.motion.study", 7),
        ("deblurlab.core.tables", 1),
        ("deblurlab", 1),
        ("deblurlab.run", 9),
        ("deblurlab.nonesuch", None),  # a new top-level module must be declared
    ],
)
def test_a_package_gives_its_layer_to_its_modules(module, expected):
    assert layer(module) == expected
