"""Write notebooks/08_findings.ipynb (run once by hand: python tools/build_findings_notebook.py).
The notebook is the source of truth afterwards; this script records how it was first made."""

from pathlib import Path

from nbbuild import PARAMETERS, build

ROOT = Path(__file__).resolve().parent.parent

CELLS = [
    (
        "md",
        """
# Chapter 8: which of the original report's findings hold?

The original report ranked its networks by single numbers: one mean MSE, PSNR and SSIM a network,
with no word on how far those means would move on other test images. This chapter takes its claims
one by one and tests each on the scores that the earlier chapters saved, **with a confidence
interval on every number**. A verdict is computed from each interval by a fixed rule, and every
sentence about a verdict is written by the library from the numbers, so the text can never claim
a difference that the data do not support.

Nothing is trained here. The CIFAR-10 chapters (1 to 4) saved every test image's MSE, PSNR and
SSIM; all of them scored the same test images in the same order, which this notebook checks before
it pairs them. The motion chapters (5 and 7) saved their per-frame scores and per-patch SSIMs. A
chapter whose results are absent from this output folder, or were scored on other test images,
leaves its claims untested, and the scorecard says so.
""",
    ),
    ("parameters", PARAMETERS),
    (
        "code",
        """
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from deblurlab import findings
from deblurlab.core import stats
from deblurlab.core.tables import to_markdown
from deblurlab.outputs.figures import plot_quality_vs_budget, save_fig
from deblurlab.studies.cifar import study as cs

study = cs.prepare_study(profile, data_dir)
evidence = findings.collect(study)
print(evidence.describe())
""",
    ),
    (
        "md",
        """
## Method

**Intervals.** Each interval is a 95% bootstrap confidence interval over the test images, from
`scipy.stats.bootstrap` (bias-corrected and accelerated, 2,000 resamples, a fixed seed, so a rerun
gives the same interval). The test images are what would change if the study were repeated on
other images; the bootstrap imitates that by resampling them.

**Paired comparisons.** Some test images are hard for every network and some easy. Comparing two
networks' separate intervals would count that shared spread twice; a *paired* bootstrap resamples
the images once for both networks and measures only their difference (`paired=True` in scipy).

**Verdicts.** A claim that network A beats network B is *reproduced* when the whole interval of the
difference lies on the claimed side of zero, *contradicted* when it lies wholly on the other side,
and *inconclusive* when it contains zero, or when our data are not the original's (the motion-blur
claims, unless the data really are REDS). A claim made of several comparisons is reproduced only if
all are, and contradicted if any is. Where a shipped reference run (the full profile's training,
with early stopping, scored by the chapters on the same images) exists, its verdict is the one that
counts when every network in it reached early stopping, or when its verdict rests on
comparisons that more training of the unfinished or absent networks could not undo (an unfinished
network's best checkpoint only improves with more epochs, so one already significantly ahead
stays ahead); the GPU reference runs likewise, after the
CPU's; otherwise this run's counts. This run's verdicts name the budget they were reached at
("contradicted at a budget of 1 epoch"): they describe networks cut short, not finished ones.
""",
    ),
    (
        "code",
        """
print(stats.METHOD)
print(stats.VERDICT_RULE)
""",
    ),
    (
        "md",
        """
## A PSNR that does not mislead

The study's tables keep the stated convention: PSNR per image, then the mean, with an identical pair
counted as 100 dB. A blur with σ below 1/3 leaves an image unchanged, so the blurred input collects
those 100 dB scores, which no network's output, never exactly identical, can match. The table
below gives each method's PSNR three ways: by the convention, over the images the blur changed
only, and as the **PSNR of the mean MSE**, 10 log₁₀(1 / mean MSE), which treats the test set as one
image. The findings use the last, with its interval.
""",
    ),
    (
        "code",
        """
psnr_table, psnr = findings.psnr_table(evidence)
display(Markdown(to_markdown(psnr_table)))
print(psnr["sentence"])
""",
    ),
    (
        "md",
        """
## The scorecard

One row a claim: the claim, the metric that tests it, the original's numbers, our difference with
its paired interval (this run, and the reference runs where they exist), the verdict and what
limits it. At the smoke size the numbers mean nothing, but the verdicts follow the same rule.
""",
    ),
    (
        "code",
        """
card = findings.scorecard(evidence)
scorecard = findings.write_tables(card, evidence)
display(Markdown(to_markdown(scorecard)))
""",
    ),
    (
        "md",
        """
The same verdicts in words, each written from its interval:
""",
    ),
    (
        "code",
        """
for sentence in card.sentences:
    print("-", sentence)
""",
    ),
    (
        "md",
        """
Every comparison behind the rows, with both methods' values (A and B), their difference and its
interval. For claim 7 the difference is our share of "too perfect" patches minus the original's 29%.
""",
    ),
    (
        "code",
        """
display(Markdown(to_markdown(card.tests, digits=5)))
""",
    ),
    (
        "md",
        """
## Quality at equal training budgets

The networks did not train for the same time: at the CPU profiles some had one epoch on a subset
of the images, others several on all of them. A ranking of final scores then partly ranks budgets.
The figure puts each CIFAR-10 network's validation PSNR, epoch by epoch, against the training time
spent so far and against the training FLOPs (three times the forward FLOPs per image, for every
image trained on), from the histories that the training runs keep; dashed, the shipped reference
runs' histories (their zoo records), which trained far longer. A curve above another at the same
abscissa did better on the same budget.
""",
    ),
    (
        "code",
        """
curves = findings.budget_curves(study)
reference = findings.reference_curves()  # the shipped reference runs, dashed
fig = plot_quality_vs_budget(curves, reference)
save_fig("findings_budget", fig)
plt.show()
budget_table, budget = findings.budget_table(curves, evidence)
display(Markdown(to_markdown(budget_table, digits=2)))
print(budget["sentence"])
""",
    ),
    (
        "md",
        """
## Conclusion

The report's conclusion is written from the verdicts above and saved with them in
`report/results/findings.json`, from which the report's findings section is rendered.
""",
    ),
    (
        "code",
        """
payload = findings.save_results(card, evidence, psnr, budget)
for sentence in payload["conclusion"]:
    print(sentence)
""",
    ),
]

if __name__ == "__main__":
    build(ROOT / "notebooks" / "08_findings.ipynb", CELLS)
