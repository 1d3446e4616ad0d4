"""docs/layout.md is the package's tree as ``tools/layout.py`` prints it (rewrite it with
``python tools/layout.py --write docs/layout.md`` after adding, moving or redocumenting a
module)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layout():
    spec = importlib.util.spec_from_file_location("layout", ROOT / "tools" / "layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_layout_matches_the_tree():
    written = (ROOT / "docs" / "layout.md").read_text()
    assert written == _layout().render(), (
        "docs/layout.md is out of date: python tools/layout.py --write docs/layout.md"
    )


def test_every_module_and_package_is_listed():
    text = _layout().render()
    package = ROOT / "lib" / "deblurlab"
    for path in package.rglob("*.py"):
        if "__pycache__" in path.parts or path.name == "__init__.py":
            continue
        depth = len(path.relative_to(package).parts)
        assert f"\n{'  ' * depth}{path.name} " in text, f"{path} is not in the layout"
    for sub in ("core", "runtime", "training", "outputs", "deblur", "studies", "perf", "findings"):
        assert f"\n  {sub}/ " in text, f"{sub}/ is not in the layout"
