"""The scorecard (one verdict a claim, this run's or the reference runs') and the conclusion
written from its verdicts."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core import stats as S
from .claims import BLURRED_INPUT, CLAIMS, DIGITS, GPU_REFERENCE, REFERENCE, Claim, pretty
from .evidence import Evidence
from .verdicts import claim_sentence, run_claim, verdict_limit, verdict_reason


@dataclass
class Scorecard:
    """The verdict on every claim (``rows``) and every test behind them (``tests``)."""

    rows: list[dict]
    tests: pd.DataFrame

    @property
    def sentences(self) -> list[str]:
        """The sentence stating each claim's verdict, in claim order."""
        return [row["sentence"] for row in self.rows]

    def counts(self) -> dict[str, int]:
        """How many claims received each verdict."""
        return {v: sum(row["verdict"] == v for row in self.rows) for v in S.VERDICTS}


def unconverged(claim: Claim, evidence: Evidence, prefix: str = REFERENCE) -> list[str]:
    """The models of ``claim`` whose reference run (``prefix``: the CPU's or the GPU's) ended
    before early stopping: at an epoch cap, or cut by its time limit (in progress)."""
    models = sorted({m for t in claim.tests for m in (t.a, t.b) if m != BLURRED_INPUT})
    return [
        m
        for m in models
        if prefix + m in evidence.training
        and not str(evidence.training[prefix + m].get("stopped", "")).startswith("early stopping")
    ]


def budget_of(claim: Claim, evidence: Evidence, source: str) -> str:
    """For a CIFAR-10 or motion verdict that rests on this run's networks at a CPU profile (not
    trained to convergence), the budget it was reached at, e.g. "at a budget of 1 epoch", or ""."""
    if claim.kind not in ("cifar", "motion") or source != "this run" or evidence.profile == "full":
        return ""
    models = sorted({m for t in claim.tests for m in (t.a, t.b) if m != BLURRED_INPUT})
    epochs = sorted({evidence.training.get(m, {}).get("epochs") for m in models} - {None})
    if not epochs:
        return ""
    return f"at a budget of {'/'.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}"


LOWER_IS_BETTER = {"mse"}


def sides(test) -> tuple[str, str]:
    """(the method ``test`` claims is better, the one it claims is worse)."""
    a_better = (test.expected_sign < 0) == (test.metric in LOWER_IS_BETTER)
    return (test.a, test.b) if a_better else (test.b, test.a)


def claimed_sides(claim: Claim) -> tuple[set[str], set[str]]:
    """(methods the claim says are better, methods it says are worse), over its tests."""
    pairs = [sides(t) for t in claim.tests]
    return {better for better, _ in pairs}, {worse for _, worse in pairs}


def _test_stands(test, result: dict, unfinished: set[str]) -> bool:
    """Whether one test's verdict would stand however its unfinished networks went on training.

    A network that stopped before early stopping (an epoch cap, or cut by its time limit) only
    gets better with more epochs. So a claimed winner already significantly ahead ("reproduced")
    stays ahead if the claimed loser is finished; a claimed loser already significantly ahead
    ("contradicted") stays ahead if the claimed winner is finished; an undecided test needs both."""
    if result["missing"]:
        return False
    better, worse = sides(test)
    needed = {
        "reproduced": {worse},
        "contradicted": {better},
    }.get(result["verdict"], {better, worse})
    return not (needed & unfinished)


def source_decides(claim: Claim, run: dict | None, unfinished) -> bool:
    """Whether a set of reference runs (``run``: the claim's tests on them) decides ``claim``
    though some of its networks are unfinished or have no run: a contradiction needs one test
    that stands (``_test_stands``); any other verdict needs every test present and standing."""
    if run is None or not run["tests"]:
        return False
    stands = [_test_stands(t, r, set(unfinished)) for t, r in zip(claim.tests, run["tests"])]
    if run["verdict"] == "contradicted":
        return any(ok and r["verdict"] == "contradicted" for ok, r in zip(stands, run["tests"]))
    return not run["missing"] and all(stands)


def _no_run(run: dict | None) -> list[str]:
    """The claim's networks without a run in ``run``'s source."""
    missing = {m for t in (run or {}).get("tests", []) for m in t["missing"]}
    return sorted({m.split(":", 1)[-1] for m in missing})


def _partial_note(short: list[str], absent: list[str]) -> str:
    """What a verdict from reference runs with unfinished or absent networks rests on."""
    said = [f"{', '.join(map(pretty, short))} stopped before early stopping"] if short else []
    if absent:
        said.append(
            f"{', '.join(map(pretty, absent))} ha{'s' if len(absent) == 1 else 've'} no run"
        )
    text = "; ".join(said)
    return (
        text[0].upper() + text[1:] + "; the verdict rests on tests that more training of those "
        "networks could not undo."
    )


def scorecard(evidence: Evidence, claims=CLAIMS) -> Scorecard:
    """Test every claim on this run and on the reference runs (CPU and GPU). The verdict that
    counts comes from finished networks first: the CPU reference runs when every network has one
    that reached early stopping, else the GPU's when all of those did; else the CPU's, then the
    GPU's, when their verdict stands however their unfinished or absent networks would score
    (``source_decides``); else this run's, which then names its training budget."""
    rows, tests = [], []
    for claim in claims:
        this = run_claim(claim, evidence)
        reference = run_claim(claim, evidence, prefix=REFERENCE)
        gpu = run_claim(claim, evidence, prefix=GPU_REFERENCE)
        capped = unconverged(claim, evidence)
        capped_gpu = unconverged(claim, evidence, GPU_REFERENCE)
        complete = {
            "reference run": reference is not None and not reference["missing"] and not capped,
            "GPU reference run": gpu is not None and not gpu["missing"] and not capped_gpu,
        }
        partial = {
            "reference run": source_decides(claim, reference, capped),
            "GPU reference run": source_decides(claim, gpu, capped_gpu),
        }
        runs = {"reference run": reference, "GPU reference run": gpu}
        # finished networks first: every run complete, then runs whose verdict more epochs
        # cannot undo, the CPU's before the GPU's each time; else this run's, with its budget
        source = next((src for ok in (complete, partial) for src, v in ok.items() if v), "this run")
        final = runs.get(source, this)
        verdict = final["verdict"] if final else "inconclusive"
        budget = budget_of(claim, evidence, source) if final and not final.get("missing") else ""
        this_budget = budget_of(claim, evidence, "this run")  # said beside this run's verdicts
        limit = verdict_limit(claim, final, source, evidence)
        has_reference = reference is not None and any(not t["missing"] for t in reference["tests"])
        names = ", ".join(pretty(m) for m in capped)
        if source == "this run" and has_reference and capped:
            limit += (
                f" The reference runs do not decide it: {names} stopped at an epoch cap "
                "before early stopping, so they compare unequal budgets."
            )
        elif source != "this run" and not complete[source]:
            limit += " " + _partial_note(
                capped if source == "reference run" else capped_gpu, _no_run(final)
            )
        rows.append(
            {
                "number": claim.number,
                "text": claim.text,
                "metric": claim.metric,
                "original": claim.original,
                "kind": claim.kind,
                "this_run": this,
                "reference": reference,
                "gpu_reference": gpu,
                "verdict": verdict,
                "budget": budget,
                "this_budget": this_budget,
                "source": source,
                "reason": verdict_reason(final, claim),
                "limit": limit,
                "sentence": claim_sentence(claim, final, verdict, source, limit, budget),
            }
        )
        for run_label, run in (
            ("this run", this),
            ("reference run", reference),
            ("GPU reference run", gpu),
        ):
            for t in (run or {}).get("tests", []):
                tests.append(
                    {
                        "claim": claim.number,
                        "run": run_label,
                        "test": t["label"],
                        "n": t.get("n", 0),
                        "A": t["a_value"],
                        "B": t["b_value"],
                        "A − B": t["a_value"] - t["b_value"],
                        "95% CI": _ci_cell(t),
                        "verdict": t["verdict"]
                        + (f" {this_budget}" if run_label == "this run" and this_budget else ""),
                    }
                )
    return Scorecard(rows, pd.DataFrame(tests))


def _ci_cell(test: dict) -> str:
    """The interval of A − B (for claim 7's share: of the share minus the claimed share)."""
    if test["metric"] == "share":
        return S.format_ci(
            test["low"] - test["b_value"], test["high"] - test["b_value"], 3, signed=True
        )
    return S.format_ci(test["low"], test["high"], DIGITS[test["metric"]], signed=True)


def conclusion(card: Scorecard, evidence: Evidence) -> list[str]:
    """The report's conclusion, written from the verdicts alone."""
    rows = card.rows
    by = {v: [r["number"] for r in rows if r["verdict"] == v] for v in S.VERDICTS}

    def listed(numbers):
        return (
            ", ".join(map(str, numbers[:-1]))
            + (" and " if len(numbers) > 1 else "")
            + str(numbers[-1])
        )

    parts = [
        f"{len(numbers)} {'is' if len(numbers) == 1 else 'are'} {v} "
        f"(claim{'s' if len(numbers) > 1 else ''} {listed(numbers)})"
        for v, numbers in by.items()
        if numbers
    ]
    out = [f"Of the original report's {len(rows)} findings tested here, " + "; ".join(parts) + "."]
    budgeted = [r for r in rows if r.get("budget") and r["verdict"] != "inconclusive"]
    if budgeted:
        numbers = [r["number"] for r in budgeted]
        out.append(
            f"The verdict{'s' if len(numbers) > 1 else ''} on claim"
            f"{'s' if len(numbers) > 1 else ''} {listed(numbers)} "
            f"hold{'s' if len(numbers) == 1 else ''} only at this run's training budget ("
            + "; ".join(f"claim {r['number']} {r['budget']}" for r in budgeted)
            + "): networks cut short, not finished ones, so they are not findings about the "
            "architectures."
        )
    reasons = {
        key: [r["number"] for r in rows if r["verdict"] == "inconclusive" and r["reason"] == key]
        for key in ("interval", "data", "missing")
    }
    why = []
    for key, because in (
        (
            "interval",
            "the interval of a difference contains zero, so this run cannot tell the methods apart",
        ),
        ("data", "our data are not the original's"),
        ("missing", "the results needed were missing"),
    ):
        numbers = reasons[key]
        if numbers:
            subject = f"claim{'s' if len(numbers) > 1 else ''} {listed(numbers)}"
            verb = " stays open" if len(numbers) == 1 else " stay open"
            why.append(
                subject[0].upper() + subject[1:] + verb + f" because {because}"
                if not why
                else f"{subject} because {because}"
            )
    if why:
        out.append("; ".join(why) + ".")
    gpu_used = [r["number"] for r in rows if r["source"] == "GPU reference run"]
    if gpu_used:
        out.append(
            f"Claim{'s' if len(gpu_used) > 1 else ''} {listed(gpu_used)} "
            f"{'are' if len(gpu_used) > 1 else 'is'} decided by the GPU reference runs (the same "
            "full-profile training to early stopping, on a lent GPU: zoo/gpu/), since not all "
            "of the CPU reference runs behind "
            f"{'them' if len(gpu_used) > 1 else 'it'} reached early stopping."
        )
    if any(r["source"] == "reference run" for r in rows):
        used = [r["number"] for r in rows if r["source"] == "reference run"]
        others = "; the others from this run" if len(used) < len(rows) else ""
        out.append(
            f"The verdict{'s' if len(used) > 1 else ''} of claim{'s' if len(used) > 1 else ''} "
            f"{listed(used)} come{'s' if len(used) == 1 else ''} from the shipped reference runs "
            f"(the full profile's training; see each claim for runs stopped at an epoch cap)"
            f"{others}."
        )
    if evidence.profile != "full" and any(
        r["source"] == "this run" and r["kind"] == "cifar" for r in rows
    ):
        out.append(
            "The verdicts of this run describe networks trained briefly on a CPU (the "
            f"{evidence.profile} profile), not the converged networks of the original: a "
            "contradiction or an open question here may change with longer training, and a "
            "reproduced ranking may too."
        )
    return out
