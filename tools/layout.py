"""Print the package's layout: the tree of lib/deblurlab, each module with the first line of its
docstring (a package's ``__init__`` line says which layer it is; tests/test_layers.py checks them).

    python tools/layout.py                         # print it
    python tools/layout.py --write docs/layout.md  # write it there (tests/test_layout.py compares)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lib" / "deblurlab"
TITLE = "# Layout of lib/deblurlab (written by `python tools/layout.py --write docs/layout.md`)"
LAYERS_FROM = ROOT / "tests" / "test_layers.py"  # its LAYERS: each top-level entry's layer
WIDTH = 116  # longest line; a longer description is cut at a word
COLUMN = 28  # where the descriptions start
SKIP = {"__pycache__"}


def first_line(path: Path) -> str:
    """The first line of ``path``'s docstring ("" where it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path)))
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def layers() -> dict[str, int]:
    """The layer of each top-level module or subpackage, from tests/test_layers.py's ``LAYERS``."""
    for node in ast.parse(LAYERS_FROM.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LAYERS":
            return {n: k for k, names in ast.literal_eval(node.value).items() for n in names}
    return {}


def _entry(name: str, depth: int, text: str, layer: int | None = None) -> str:
    left = "  " * depth + name
    if layer is not None:
        text = f"[{layer}] " + re.sub(r"^Layer \d+, ", "", text)
        text = text[:4] + text[4:5].upper() + text[5:]
    line = f"{left:<{COLUMN - 1}} {text}".rstrip() if text else left
    if len(line) <= WIDTH:
        return line
    return line[: WIDTH - 3].rsplit(" ", 1)[0].rstrip(" ,;:(") + " ..."


def _data_note(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file() and not SKIP & set(p.parts)]
    kinds = sorted({p.suffix or p.name for p in files})
    return f"data: {len(files)} file{'s' if len(files) != 1 else ''} ({', '.join(kinds)})"


def tree_lines(folder: Path = PACKAGE, depth: int = 1) -> list[str]:
    """One line a module, package or data folder under ``folder``, packages after modules; a
    top-level entry's line starts with its layer ([1] is the bottom)."""
    layer_of = layers() if depth == 1 else {}
    lines = []
    modules = sorted(
        (p for p in folder.glob("*.py")),
        key=lambda p: (p.name not in ("__init__.py", "__main__.py"), p.name),
    )
    for path in modules:
        if path.name == "__init__.py":
            continue  # its line heads the package
        lines.append(_entry(path.name, depth, first_line(path), layer_of.get(path.stem)))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in SKIP):
        init = sub / "__init__.py"
        if any(sub.glob("*.py")):
            text = first_line(init) if init.exists() else ""
            lines.append(_entry(f"{sub.name}/", depth, text, layer_of.get(sub.name)))
            lines += tree_lines(sub, depth + 1)
        else:
            lines.append(_entry(f"{sub.name}/", depth, _data_note(sub)))
    return lines


def render() -> str:
    """The layout block: a title, then the tree in a code block."""
    head = _entry("lib/deblurlab/", 0, first_line(PACKAGE / "__init__.py"))
    body = "\n".join([head, *tree_lines()])
    return f"{TITLE}\n\n```text\n{body}\n```\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/layout.py", description=__doc__)
    parser.add_argument("--write", type=Path, help="write the block to this file")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        args.write.write_text(text)
        print(f"wrote {args.write}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
