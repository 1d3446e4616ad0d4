"""Tiny helper to write a notebook from a list of (kind, source) cells. Used by hand when a
chapter notebook is first created; the .ipynb files are the source of truth afterwards."""

import nbformat

KERNELSPEC = {"name": "deblurlab", "display_name": "Python (deblurlab)", "language": "python"}


def build(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    nbformat.write(nb, path)


# The notebooks' parameters cell, exactly as they hold it (two of its lines are longer than ours).
PARAMETERS = (
    """
# Parameters. Papermill injects its own values after this cell; nbval sets $DEBLURLAB_PROFILE.
import os

"""
    'profile = os.environ.get("DEBLURLAB_PROFILE", "default")  # "smoke" (seconds), '
    '"default" (CPU minutes) or "full" (GPU)\n'
    "data_dir = None  # a CIFAR-10 folder or archive; None searches the usual places "
    "(see deblurlab.data.cifar)\n"
)
