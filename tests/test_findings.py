"""The findings scorecard: pairing checks, each verdict, generated sentences, outputs and the
report section."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from deblurlab import findings as F
from deblurlab import report
from deblurlab.core.paths import figures_dir, results_dir, runs_dir, tables_dir
from deblurlab.core.results import BLURRED_INPUT
from deblurlab.studies.cifar.results import save_per_image
from deblurlab.training.profiles import MotionPlan

N = 300
PROV = {
    "data": "CIFAR-10 test fixture; split 96 train / 32 val / 300 test",
    "profile": "smoke",
    "date": "2026-01-01 00:00",
    "commit": "abc1234",
    "machine": "test machine",
    "compute": "float32",
}


@pytest.fixture(autouse=True)
def outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    return tmp_path / "out"


def _metrics(mse, ssim):
    return {"mse": mse, "psnr": 10 * np.log10(1 / mse), "ssim": ssim}


def cifar_scores(seed=0, prefix=""):
    """Per-image scores whose truths are known: ResUNet3 clearly beats ResUNet1; EDDenseNet ties
    ResUNet1 and is clearly worse than ResUNet3; CAESSC d30 beats d22 half, which the ReLU output
    trails everywhere; the LSTM raises PSNR clearly but leaves SSIM unchanged; ResUNet3 beats
    SRN."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(np.log(0.002), 0.5, N)

    def noisy(scale):
        return base * scale * rng.uniform(0.98, 1.02, N)

    ssim = rng.uniform(0.85, 0.95, N)
    scores = {
        "resunet1": _metrics(noisy(1.0), ssim),
        "resunet3": _metrics(noisy(0.8), ssim + 0.01),
        "eddensenet": _metrics(base * rng.uniform(0.9, 1.1, N), ssim),
        "caessc_d30_f64": _metrics(noisy(0.9), ssim),
        "caessc_d22_f128_half": _metrics(noisy(1.0), ssim),
        "caessc_d22_f128_half_no_sigmoid": _metrics(noisy(1.5), ssim - 0.05),
        "srndeblur_cifar": _metrics(noisy(0.95), ssim),
        "srndeblur_cifar_lstm": _metrics(noisy(0.9), ssim + rng.normal(0, 0.01, N)),
    }
    scores = {prefix + k: v for k, v in scores.items()}
    blurred = np.where(np.arange(N) < 30, 0.0, base * 3)
    psnr = np.where(blurred == 0, 100.0, 10 * np.log10(1 / np.maximum(blurred, 1e-12)))
    scores[BLURRED_INPUT] = {
        "mse": blurred,
        "psnr": psnr,
        "ssim": np.where(blurred == 0, 1.0, ssim - 0.1),
    }
    return scores


def evidence(scores=None, motion=None, patches=None, profile="smoke"):
    scores = scores if scores is not None else cifar_scores()
    ev = F.Evidence(
        profile,
        {**PROV, "profile": profile},
        "fixture",
        N,
        scores=scores,
        sigmas=np.linspace(0, 3, N),
        dark=np.arange(N) < N // 4,
        chapters={c: {"status": "saved", "message": ""} for c in F.CIFAR_CHAPTERS},
        training={m: {"epochs": 1, "train_seconds": 5.0} for m in F.MODEL_CHAPTER},
    )
    ev.motion, ev.patches = motion, patches
    return ev


def motion(kind="gopro-sample", gain=0.5, n=12):
    rng = np.random.default_rng(1)
    blurred = rng.uniform(0.002, 0.01, n)
    restored = blurred * 10 ** (-gain / 10) * rng.uniform(0.99, 1.01, n)
    ssim = rng.uniform(0.6, 0.8, n)
    return {
        "scores": {
            BLURRED_INPUT: _metrics(blurred, ssim),
            "srndeblur_reds": _metrics(restored, ssim + 0.02),
        },
        "label": "srndeblur_reds",
        "n": n,
        "eval": f"{n} whole test frames",
        "data_kind": kind,
        "data_label": {
            "reds": "REDS",
            "gopro-sample": "GoPro sample (scene x)",
            "synthetic": "synthetic",
        }[kind],
        "data_is_real": kind != "synthetic",
        "provenance": PROV,
    }


def patches(kind="synthetic", share=0.29, frames=200, per_frame=4):
    rng = np.random.default_rng(2)
    flags = rng.random(frames * per_frame) < share
    ssim = np.where(flags, 0.95, 0.7)
    return {
        "ssim": ssim,
        "frame": np.repeat(np.arange(frames), per_frame),
        "threshold": 0.9,
        "frames": frames,
        "data_kind": kind,
        "data_label": "REDS" if kind == "reds" else "synthetic camera shake",
        "data_is_real": kind != "synthetic",
        "provenance": PROV,
    }


def row(card, number):
    return next(r for r in card.rows if r["number"] == number)


def test_every_cifar_verdict_follows_the_paired_intervals():
    card = F.scorecard(evidence())
    assert row(card, 1)["verdict"] == "reproduced"  # ResUNet3 beats ResUNet1 by 20%
    assert row(card, 2)["verdict"] == "inconclusive"  # ResUNet1 ties EDDenseNet
    assert row(card, 2)["reason"] == "interval"
    assert row(card, 3)["verdict"] == "reproduced"
    assert row(card, 4)["verdict"] == "reproduced"  # worse everywhere, the dark quarter included
    assert row(card, 5)["verdict"] == "inconclusive"  # PSNR up, SSIM unchanged
    assert [t["verdict"] for t in row(card, 5)["this_run"]["tests"]] == [
        "reproduced",
        "inconclusive",
    ]
    assert row(card, 6)["verdict"] == "contradicted"  # ResUNet3 is better than SRNDeblur with LSTM
    assert all(r["source"] == "this run" for r in card.rows)
    assert card.counts() == {"reproduced": 3, "contradicted": 1, "inconclusive": 4}


def test_sentences_never_claim_a_difference_the_interval_does_not_support():
    card = F.scorecard(evidence())
    claim2 = row(card, 2)["sentence"]
    assert "inconclusive" in claim2 and "compatible with no difference" in claim2
    assert "ResUNet3's MSE is lower than EDDenseNet's" in claim2  # the supported half is stated
    assert "ResUNet1's MSE is lower" not in claim2 and "ResUNet1's MSE is higher" not in claim2
    assert "is lower than ResUNet1's" in row(card, 1)["sentence"]
    claim6 = row(card, 6)["sentence"]
    assert (
        "contradicted" in claim6
        and "SRNDeblur with LSTM's PSNR of the mean MSE is lower than ResUNet3's" in claim6
    )
    for r in card.rows:
        for t in (r["this_run"] or {}).get("tests", []):
            if t["metric"] != "share" and t["low"] <= 0 <= t["high"]:
                a, b = F.pretty(t["a"]), F.pretty(t["b"])
                assert (
                    f"{a}'s {F.METRIC_NAMES[t['metric']]} is higher than {b}" not in r["sentence"]
                )
                assert f"{a}'s {F.METRIC_NAMES[t['metric']]} is lower than {b}" not in r["sentence"]


def test_motion_claim_is_inconclusive_when_the_data_differ_and_decided_on_reds():
    for kind in ("gopro-sample", "synthetic"):
        r = row(F.scorecard(evidence(motion=motion(kind))), 8)
        assert r["verdict"] == "inconclusive" and r["reason"] == "data"
        assert "the original's REDS, so the original's number cannot be tested" in r["limit"]
        assert "because our data are not the original's" in r["sentence"]
    assert row(F.scorecard(evidence(motion=motion("reds", gain=0.5))), 8)["verdict"] == "reproduced"
    assert (
        row(F.scorecard(evidence(motion=motion("reds", gain=-0.5))), 8)["verdict"] == "contradicted"
    )


def test_patch_claim_needs_reds_and_a_precise_enough_share():
    assert row(F.scorecard(evidence(patches=patches("synthetic"))), 7)["verdict"] == "inconclusive"
    assert (
        row(F.scorecard(evidence(patches=patches("reds", 0.29, frames=2000))), 7)["verdict"]
        == "reproduced"
    )
    assert row(F.scorecard(evidence(patches=patches("reds", 0.6))), 7)["verdict"] == "contradicted"
    assert (
        row(F.scorecard(evidence(patches=patches("reds", 0.29, frames=10, per_frame=2))), 7)[
            "verdict"
        ]
        == "inconclusive"
    )


def test_missing_results_leave_claims_untested():
    scores = {
        k: v for k, v in cifar_scores().items() if k not in ("eddensenet", "srndeblur_cifar_lstm")
    }
    ev = evidence(scores)
    ev.chapters["eddensenet"] = {
        "status": "missing",
        "message": "no per-image results: run notebooks/02_eddensenet.ipynb",
    }
    card = F.scorecard(ev)
    assert row(card, 1)["verdict"] == "reproduced"
    for number in (2, 5, 7, 8):
        assert (
            row(card, number)["verdict"] == "inconclusive"
            and row(card, number)["reason"] == "missing"
        )
    assert "02_eddensenet" in row(card, 2)["limit"]
    assert "could not be tested" in row(card, 7)["sentence"]
    assert row(card, 6)["verdict"] == "inconclusive" and row(card, 6)["reason"] == "missing"
    assert "no scores for srndeblur_cifar_lstm" in F.format_run(row(card, 6)["this_run"])


def test_reference_runs_decide_where_they_exist():
    scores = {
        **cifar_scores(),
        **{
            k: v
            for k, v in cifar_scores(seed=1, prefix=F.REFERENCE).items()
            if k.startswith(F.REFERENCE)
        },
    }
    # in the reference runs, ResUNet1 beats ResUNet3 clearly
    scores[F.REFERENCE + "resunet1"] = {
        m: v.copy() for m, v in scores[F.REFERENCE + "resunet3"].items()
    }
    scores[F.REFERENCE + "resunet1"]["mse"] = scores[F.REFERENCE + "resunet3"]["mse"] * 0.7
    ev = evidence(scores)
    for name in ("resunet1", "resunet3"):  # both reference runs reached early stopping
        ev.training[F.REFERENCE + name] = {
            "epochs": 30,
            "stopped": "early stopping: no better validation loss",
        }
    card = F.scorecard(ev)
    r1 = row(card, 1)
    assert (
        r1["this_run"]["verdict"] == "reproduced" and r1["reference"]["verdict"] == "contradicted"
    )
    assert r1["verdict"] == "contradicted" and r1["source"] == "reference run"
    assert "reference runs" in r1["sentence"] and "Budget: the reference runs" in r1["limit"]
    assert row(card, 8)["reference"] is None and F.format_run(None) == "no reference run"
    assert any("reference runs" in s for s in F.conclusion(card, ev))

    # a reference run cut at its epoch cap compares unequal budgets: this run decides, and says why
    ev.training[F.REFERENCE + "resunet3"] = {"epochs": 8, "stopped": "epoch limit (8)"}
    r1 = row(F.scorecard(ev), 1)
    assert (
        r1["source"] == "this run"
        and r1["verdict"] == "reproduced"
        and r1["reference"]["verdict"] == "contradicted"
    )
    assert "ResUNet3 stopped at an epoch cap" in r1["limit"]

    # but a capped claimed loser that already wins clearly cannot be overtaken by more epochs
    ev.training[F.REFERENCE + "resunet3"] = {"epochs": 30, "stopped": "early stopping: ..."}
    ev.training[F.REFERENCE + "resunet1"] = {"epochs": 8, "stopped": "epoch limit (8)"}
    r1 = row(F.scorecard(ev), 1)
    assert r1["source"] == "reference run" and r1["verdict"] == "contradicted"
    assert "more training of those networks could not undo" in r1["limit"]


def test_unfinished_runs_decide_only_in_the_direction_more_epochs_cannot_undo():
    claim = next(c for c in F.CLAIMS if c.number == 1)  # ResUNet3 beats ResUNet1 (MSE)
    assert F.claimed_sides(claim) == ({"resunet3"}, {"resunet1"})

    def run(verdict, missing=()):
        test = {"verdict": verdict, "missing": list(missing)}
        return {"verdict": verdict, "tests": [test], "missing": bool(missing)}

    assert F.source_decides(claim, run("inconclusive"), [])
    assert F.source_decides(claim, run("reproduced"), ["resunet3"])
    assert not F.source_decides(claim, run("reproduced"), ["resunet1"])
    assert F.source_decides(claim, run("contradicted"), ["resunet1"])
    assert not F.source_decides(claim, run("contradicted"), ["resunet3"])
    assert not F.source_decides(claim, run("inconclusive"), ["resunet3"])
    assert not F.source_decides(claim, run("inconclusive", ["reference:resunet1"]), [])
    assert not F.source_decides(claim, None, [])
    lstm = next(c for c in F.CLAIMS if c.number == 5)  # PSNR up, SSIM down: both sides each way
    both = {"verdict": "reproduced", "missing": []}
    reproduced = {"verdict": "reproduced", "tests": [both, both], "missing": False}
    assert not F.source_decides(lstm, reproduced, ["srndeblur_cifar_lstm"])


def test_one_contradiction_between_finished_networks_decides_a_claim_others_cannot_save():
    """Claim 6 (SRNDeblur+LSTM is the best network): finished reference runs of ResUNet3 and the
    LSTM network decide it, though a CAESSC network has no run and another is unfinished."""
    scores = {**cifar_scores()}
    for name, v in cifar_scores(seed=1, prefix=F.REFERENCE).items():
        if name.startswith(F.REFERENCE) and "no_sigmoid" not in name:  # one network without a run
            scores[name] = v
    ev = evidence(scores)
    for name in F.MODEL_CHAPTER:
        ev.training[F.REFERENCE + name] = {"epochs": 30, "stopped": "early stopping: ..."}
    ev.training[F.REFERENCE + "caessc_d30_f64"] = {"epochs": 1, "stopped": "in progress: ..."}
    r6 = row(F.scorecard(ev), 6)
    assert r6["reference"]["missing"] and r6["reference"]["verdict"] == "contradicted"
    assert r6["source"] == "reference run" and r6["verdict"] == "contradicted"
    assert r6["budget"] == "" and "in the reference runs" in r6["sentence"]
    assert "CAESSC_d30_f64 stopped before early stopping" in r6["limit"]
    assert "has no run" in r6["limit"] and "Data:" not in r6["limit"]

    # the LSTM network unfinished: more epochs could undo every contradiction, this run decides
    ev.training[F.REFERENCE + "srndeblur_cifar_lstm"] = {"epochs": 3, "stopped": "epoch limit"}
    assert row(F.scorecard(ev), 6)["source"] == "this run"


def test_pairing_problem_refuses_other_test_images():
    sig = np.linspace(0, 3, 10)
    meta = {"n_test": 10, "provenance": PROV}
    assert F.pairing_problem("resunet", sig, meta, sig, meta) is None
    assert "scored 12 test images" in F.pairing_problem(
        "resunet", np.r_[sig, 1, 2], {**meta, "n_test": 12}, sig, meta
    )
    assert "profile 'default'" in F.pairing_problem(
        "resunet", sig, {**meta, "provenance": {**PROV, "profile": "default"}}, sig, meta
    )
    assert "blur strengths" in F.pairing_problem("resunet", sig[::-1], meta, sig, meta)


def fake_study(n=N):
    plan = SimpleNamespace(
        train_images=lambda m: None, train_config=lambda m: SimpleNamespace(batch_size=32, epochs=1)
    )
    sharp = np.random.default_rng(3).random((n, 4, 4, 3)).astype(np.float32)
    return SimpleNamespace(
        profile="smoke",
        plan=plan,
        provenance=PROV,
        test_sigmas=np.linspace(0, 3, n),
        splits=SimpleNamespace(train=np.zeros((96, 1)), test=sharp),
        describe=lambda: "fixture data; profile smoke",
    )


def _save_chapter(chapter, scores, sigmas, n_test=N, prov=PROV):
    models = {m: scores[m] for m in (*F.CIFAR_CHAPTERS[chapter], BLURRED_INPUT)}
    save_per_image(chapter, models, sigmas)
    payload = {
        "chapter": chapter,
        "provenance": prov,
        "n_test": n_test,
        "models": {m: {"epochs": 1, "train_seconds": 3.0} for m in F.CIFAR_CHAPTERS[chapter]},
    }
    (results_dir() / f"{chapter}.json").write_text(json.dumps(payload))


def test_collect_reads_saved_chapters_and_refuses_unpaired_ones():
    study, scores = fake_study(), cifar_scores()
    _save_chapter("resunet", scores, study.test_sigmas)
    _save_chapter("eddensenet", scores, study.test_sigmas, prov={**PROV, "profile": "default"})
    ev = F.collect(study)
    assert ev.chapters["resunet"]["status"] == "saved"
    assert (
        ev.chapters["eddensenet"]["status"] == "refused"
        and "profile" in ev.chapters["eddensenet"]["message"]
    )
    assert (
        ev.chapters["caessc"]["status"] == "missing"
        and ev.chapters["srndeblur_reds"]["status"] == "missing"
    )
    assert "resunet1" in ev.scores and "eddensenet" not in ev.scores
    assert ev.dark.sum() == N // 4 and ev.training["resunet1"]["epochs"] == 1
    card = F.scorecard(ev)
    assert row(card, 1)["verdict"] == "reproduced" and row(card, 2)["reason"] == "missing"
    assert "not paired" in row(card, 2)["limit"]


def test_motion_chapters_save_what_the_findings_read():
    from deblurlab.studies.motion import patch_analysis as pa
    from deblurlab.studies.motion import results as mr
    from deblurlab.studies.motion import study as ms

    evaluation = ms.Evaluation(
        motion("gopro-sample")["scores"], [f"f{i}" for i in range(12)], {}, "", 0.1
    )
    data = SimpleNamespace(
        source="s",
        label="GoPro sample",
        kind="gopro-sample",
        is_real=True,
        protocol="p",
        train=[0] * 5,
        val=[0],
        test=[0] * 12,
    )
    plan = MotionPlan.for_profile("smoke")
    study = ms.MotionStudy(plan, data, (np.zeros((4, 1)), np.zeros((4, 1))), np.arange(12), PROV)
    mr.save_results("srndeblur_reds", study, evaluation, {})
    analysis = pa.PatchAnalysis(
        data, plan, np.linspace(0.5, 1, 8), np.ones(3), 0.0, {"kde": 0.3}, 4, PROV
    )
    pa.save_data_results("motion_data", analysis)
    assert F._motion_evidence()["data_kind"] == "gopro-sample"
    assert F._motion_evidence()["label"] == "srndeblur_reds"

    # Beside the chapter's own short run, the shipped reference run's row decides claim 8.
    scores = dict(evaluation.scores)
    scores["srndeblur_reds (reference run)"] = motion(gain=1.0)["scores"]["srndeblur_reds"]
    evaluation.scores = scores
    mr.save_results("srndeblur_reds", study, evaluation, {})
    found = F._motion_evidence()
    assert found["label"] == "srndeblur_reds (reference run)"
    gain = found["scores"]["srndeblur_reds"]["psnr"] - found["scores"][BLURRED_INPUT]["psnr"]
    assert np.mean(gain) > 0.9
    # ... and each run shows under its own name: the chapter's as this run's, the shipped one as
    # the reference run's, which (stopped at its epoch cap) decides, since more epochs of the
    # restoring network cannot undo "restored beats blurred"
    assert set(found["runs"]) == {"", F.REFERENCE}
    ev = evidence(motion={**found, "data_kind": "reds"})
    ev.training.update({"srndeblur_reds": {"epochs": 3}, **found["training"]})
    ev.training[F.REFERENCE + "srndeblur_reds"] = {"epochs": 60, "stopped": "epoch limit (60)"}
    r8 = row(F.scorecard(ev), 8)
    assert r8["source"] == "reference run" and r8["verdict"] == "reproduced"
    assert r8["this_run"]["tests"] and r8["this_budget"] == "at a budget of 3 epochs"
    assert "SRNDeblur_reds stopped before early stopping" in r8["limit"]
    assert "the chapter's own" not in r8["limit"]
    found = F._patch_evidence()
    assert list(found["frame"]) == [0, 0, 1, 1, 2, 2, 3, 3] and len(found["ssim"]) == 8


def test_budget_curves_read_the_runs_histories():
    study = fake_study()
    run = runs_dir() / "cifar-resunet1-smoke"
    run.mkdir(parents=True)
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [0.01, 0.005],
            "val_loss": [0.01, 0.006],
            "val_psnr": [20.0, 22.0],
            "seconds": [10.0, 12.0],
        }
    ).to_csv(run / "history.csv", index=False)
    (run / "state.json").write_text(json.dumps({"config": {"batch_size": 32}}))
    (results_dir() / "comparison.json").write_text(
        json.dumps({"methods": {"resunet1": {"cost": {"MFLOP/image": 100.0}}}})
    )
    curves = F.budget_curves(study)
    assert list(curves) == ["resunet1"]
    c = curves["resunet1"]
    assert list(c["seconds"]) == [10.0, 22.0]
    assert c["tflop"].iloc[-1] == pytest.approx(
        3 * 100e6 * 96 * 2 / 1e12
    )  # 3 x forward x (96 // 32) * 32 images x 2
    df, summary = F.budget_table(curves, evidence())
    assert "22 s" in summary["sentence"] and (tables_dir() / "findings_budget.md").exists()


def test_reference_curves_read_the_shipped_records_and_are_drawn_dashed(tmp_path, monkeypatch):
    from deblurlab.outputs.figures import plot_quality_vs_budget
    from deblurlab.training import zoo

    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    history = [{"epoch": e, "val_psnr": 25.0 + e, "seconds": 30.0} for e in (1, 2, 3)]
    record = {"history": history, "config": {"batch_size": 32}, "data": {"n_train": 100}}
    (tmp_path / "resunet1.json").write_text(json.dumps(record))
    (tmp_path / "resunet1.weights.h5").write_bytes(b"")
    (tmp_path / "resunet3.json").write_text(json.dumps(record))  # no weights: not shipped
    # SRNDeblur logs its finest scale's PSNR; a run shipped unfinished says so
    scales = [{"epoch": 1, "val_fine_psnr": 24.0, "seconds": 50.0}]
    unfinished = {**record, "history": scales, "stopped": "in progress: time limit after 1 of 9"}
    (tmp_path / "srndeblur_cifar.json").write_text(json.dumps(unfinished))
    (tmp_path / "srndeblur_cifar.weights.h5").write_bytes(b"")
    curves = F.reference_curves(flops=False)
    assert list(curves) == ["resunet1", "srndeblur_cifar"]
    assert list(curves["resunet1"]["seconds"]) == [30.0, 60.0, 90.0]
    assert list(curves["resunet1"]["val_psnr"]) == [26.0, 27.0, 28.0]
    assert list(curves["srndeblur_cifar"]["val_psnr"]) == [24.0]
    fig = plot_quality_vs_budget({"resunet1": curves["resunet1"].iloc[:1]}, curves)
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines}
    assert styles["resunet1"] == "-" and styles["resunet1 (reference run)"] == "--"
    assert styles["srndeblur_cifar (reference run, in progress)"] == "--"


def test_outputs_and_the_report_section_render(tmp_path, monkeypatch):
    from deblurlab.outputs.figures import plot_quality_vs_budget, save_fig

    ev = evidence(motion=motion(), patches=patches())
    card = F.scorecard(ev)
    F.write_tables(card, ev)
    _, psnr = F.psnr_table(ev)
    _, budget = F.budget_table({}, ev)
    save_fig("findings_budget", plot_quality_vs_budget({}))
    payload = F.save_results(card, ev, psnr, budget)
    assert payload["counts"]["inconclusive"] >= 2
    saved = json.loads((results_dir() / "findings.json").read_text())
    assert saved["claims"][0]["verdict"] == "reproduced" and len(saved["conclusion"]) >= 2
    assert "30 of the 300 test images (10%) come through the blur unchanged" in psnr["sentence"]
    assert (figures_dir() / "findings_budget.png").exists()
    for name in ("findings_scorecard", "findings_tests", "findings_psnr"):
        assert (tables_dir() / f"{name}.md").exists()

    from section_render import use_only_section

    use_only_section(tmp_path, monkeypatch, "40_findings.md")
    text = report.render("")
    for sentence in [*saved["conclusion"], *(c["sentence"] for c in saved["claims"])]:
        assert sentence in text
    assert "findings_budget.png" in text and "Table 1" in text


def test_conclusion_counts_and_reasons():
    card = F.scorecard(evidence(motion=motion("synthetic"), patches=patches("synthetic")))
    text = " ".join(F.conclusion(card, evidence()))
    counts = card.counts()
    assert f"{counts['reproduced']} are reproduced" in text
    assert "our data are not the original's" in text and "contains zero" in text
    assert "(the smoke profile)" in text and "stay open because" in text


def test_collect_scores_missing_chapters_from_finished_runs_only(monkeypatch):
    from deblurlab.studies.cifar import study as cs

    study, scores = fake_study(), cifar_scores()
    for model in F.CIFAR_CHAPTERS[
        "resunet"
    ]:  # finished runs of chapter 1; chapter 2's run is unfinished
        run = runs_dir() / cs.run_name(study, model)
        run.mkdir(parents=True)
        (run / "state.json").write_text(json.dumps({"epoch": 0, "stopped_early": False}))
    run = runs_dir() / cs.run_name(study, "eddensenet")
    run.mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"epoch": -1, "stopped_early": False}))
    loaded = []

    def train_model(study_, name):
        loaded.append(name)
        return name, SimpleNamespace(epochs_run=1, train_seconds=2.0)

    monkeypatch.setattr(cs, "train_model", train_model)
    monkeypatch.setattr(
        cs,
        "evaluate",
        lambda study_, models: {
            BLURRED_INPUT: scores[BLURRED_INPUT],
            **{m: scores[m] for m in models},
        },
    )
    ev = F.collect(study, recompute=True)
    assert loaded == ["resunet1", "resunet3"]  # never trains: the unfinished run is left alone
    assert (
        ev.chapters["resunet"]["status"] == "recomputed"
        and ev.chapters["eddensenet"]["status"] == "missing"
    )
    assert row(F.scorecard(ev), 1)["verdict"] == "reproduced"


def test_refresh_rewrites_the_scorecard_from_merged_results(monkeypatch):
    from deblurlab.studies.cifar import study as cs

    study, scores = fake_study(), cifar_scores()
    monkeypatch.setattr(cs, "prepare_study", lambda profile, data_dir=None: study)
    assert F.refresh() is None  # notebook 08 never ran in this folder
    ev = F.collect(study)
    F.save_results(F.scorecard(ev), ev, budget={"sentence": "kept"})
    assert json.loads((results_dir() / "findings.json").read_text())["counts"]["inconclusive"] == 8
    for chapter in F.CIFAR_CHAPTERS:  # the chapters' results arrive later (another test worker's)
        _save_chapter(chapter, scores, study.test_sigmas)
    payload = F.refresh()
    assert payload["counts"] == {"reproduced": 3, "contradicted": 1, "inconclusive": 4}
    assert (
        payload["budget"] == {"sentence": "kept"}
        and (tables_dir() / "findings_scorecard.md").exists()
    )


def test_finished_gpu_runs_decide_before_unfinished_ones_and_budgets_are_named():
    gpu_scores = cifar_scores(seed=2, prefix=F.GPU_REFERENCE)
    scores = {**cifar_scores(), **{k: v for k, v in gpu_scores.items() if k != BLURRED_INPUT}}
    ev = evidence(scores)
    for name in ("resunet1", "resunet3"):
        ev.training[F.GPU_REFERENCE + name] = {"epochs": 50, "stopped": "early stopping: ..."}
    ev.training["resunet3"] = {"epochs": 2, "train_seconds": 9.0}
    card = F.scorecard(ev)
    r1 = row(card, 1)
    assert r1["source"] == "GPU reference run" and r1["budget"] == ""
    assert "in the GPU reference runs" in r1["sentence"] and "GPU reference runs" in r1["limit"]
    assert any("GPU reference runs" in s for s in F.conclusion(F.scorecard(ev), ev))
    # this run's own verdicts, shown beside the deciding ones, still name their budget
    table = F.write_tables(card, ev)
    mine = table.loc[table["#"] == 1, "ours, this run"].item()
    assert mine.endswith(f"→ {r1['this_run']['verdict']} at a budget of 1/2 epochs")
    assert (
        card.tests.query("claim == 1 and run == 'this run'")["verdict"]
        .str.endswith("at a budget of 1/2 epochs")
        .all()
    )

    # the claimed loser's GPU run cut by its time limit could still catch up: this run decides,
    # and says at what budget
    ev.training[F.GPU_REFERENCE + "resunet1"] = {"epochs": 4, "stopped": "in progress: time"}
    card = F.scorecard(ev)
    r1 = row(card, 1)
    assert r1["source"] == "this run" and r1["budget"] == "at a budget of 1/2 epochs"
    assert f"is {r1['verdict']} at a budget of 1/2 epochs" in r1["sentence"]
    text = " ".join(F.conclusion(card, ev))
    assert "claim 1 at a budget of 1/2 epochs" in text and "not findings about the" in text
    table = F.write_tables(card, ev)
    assert table.loc[table["#"] == 1, "verdict"].item().endswith("at a budget of 1/2 epochs")
