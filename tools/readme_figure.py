"""The README's figure: one frame of a scene the motion model never trained or validated on,
blurred / restored by the shipped ``srndeblur_reds`` / sharp, each titled with its PSNR, and the
region where blur destroyed most enlarged below.

    .venv/bin/python tools/readme_figure.py            # -> docs/images/restored.png

The frame is fixed in advance (REDS clip 000, frame 4: the README's example command), not picked
for its gain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deblurlab.core.paths import REPO_ROOT, shared_data_dir
from deblurlab.core.results import BLURRED_INPUT
from deblurlab.deblur.cli import read_image
from deblurlab.deblur.networks import load_model
from deblurlab.studies.motion.figures import plot_restored_frame
from deblurlab.training.inference import deblur_image

FRAME = "reds-sample/train_{kind}/000/00000004.png"
OUT = REPO_ROOT / "docs" / "images" / "restored.png"
RESTORED = "restored: srndeblur_reds (zoo)"


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data = shared_data_dir()
    blurred = read_image(data / FRAME.format(kind="blur"))
    sharp = read_image(data / FRAME.format(kind="sharp"))
    restored = deblur_image(load_model("srndeblur_reds"), blurred)
    images = {BLURRED_INPUT: blurred, RESTORED: restored, "sharp": sharp}
    fig = plot_restored_frame(images, [RESTORED], box_size=192)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90, bbox_inches="tight", facecolor="white")
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
