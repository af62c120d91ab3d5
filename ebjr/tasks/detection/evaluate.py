"""Offline EBJR for detection (paper eqs. 12-14): thresholds chosen on validation scenes with
COCO mAP, reported on test scenes (``make eval`` writes ``evaluation/DETECTION.md``).

A threshold ``t`` keeps the Student's detections of an image when its score (``ebjr.
detection_scores``) is at least ``t``, else takes the Teacher's; the cascade's mAP is computed
over the joined detections of all images. Costs are the paper's average FLOPs per image.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx

from ebjr.build.onnx_info import count_flops
from ebjr.build.report import cost_plot, report_main
from ebjr.core.calibration import read_calibration
from ebjr.core.layout import DEFAULT_REPOSITORY, calibration_path
from ebjr.tasks.detection import DETECTOR_ROUTER
from ebjr.tasks.detection.calibration import Point, choose, measure, sweep
from ebjr.tasks.detection.data import Scenes, iou, make_scenes
from ebjr.tasks.detection.energy import detection_energy
from ebjr.tasks.detection.metrics import coco_map, detections
from ebjr.tasks.detection.models import BIN_WIDTH
from ebjr.tasks.detection.scores import DETECTION_SCORES

log = logging.getLogger(__name__)
SCENES = {"val": 1000, "test": 1000}
TARGETS = (1.0, 0.97)  # shares of the Teacher's validation mAP
ABLATION = {
    "class term (eq. 12)": DETECTION_SCORES["detection_class_energy"],
    "box term (eq. 13)": DETECTION_SCORES["detection_box_energy"],
    "both (eq. 14)": DETECTION_SCORES["detection_energy"],
}


def f1_per_image(scenes: Scenes, found: dict, iou_min: float = 0.5) -> np.ndarray:
    """(N,) F1 of each image's valid detections against its ground truth: a detection is right
    when it names the class of an unmatched box it overlaps by ``iou_min`` (by score order)."""
    f1 = np.zeros(len(scenes.images))
    for i, (truth, labels) in enumerate(zip(scenes.boxes, scenes.labels, strict=True)):
        keep = found["valid"][i]
        order = np.argsort(-found["scores"][i][keep])
        boxes = found["boxes"][i][keep][order]
        classes = found["class_logits"][i][keep][order].argmax(-1)
        free, hits = np.ones(len(truth), dtype=bool), 0
        for box, label in zip(boxes, classes, strict=True):
            overlap = np.where(free & (labels == label), iou(box, truth), 0.0)
            if len(overlap) and overlap.max() >= iou_min:
                free[overlap.argmax()] = False
                hits += 1
        f1[i] = 2 * hits / max(len(boxes) + len(truth), 1)
    return f1


def served(repo: Path) -> list[str]:
    """What the served detector router was calibrated to, from its calibration file."""
    path = calibration_path(repo, DETECTOR_ROUTER)
    if not path.exists():
        return []
    record = read_calibration(path)
    return [
        "",
        f"The served router `{DETECTOR_ROUTER}` (`{path.relative_to(repo.parent)}`) routes on "
        f"`{record.scores[0]}`, the score its calibration found cheapest at "
        f"{record.parity_share:.0%} of the Teacher's validation mAP; that point is its default "
        f"(threshold {record.parity_thresholds[0]:.3f}: {record.parity_teacher_fraction:.1%} to "
        f"the Teacher, {record.stage_flops[1] / record.parity_flops:.2f}x fewer FLOPs on "
        "validation). Its served speed-up there is measured by `make bench` "
        "([BENCHMARKS.md](../BENCHMARKS.md), detection section).",
    ]


def evaluate(models: Path, out: Path, repo: Path = DEFAULT_REPOSITORY) -> str:
    student_path, teacher_path = models / "detector_student.onnx", models / "detector_teacher.onnx"
    fs, ft = (count_flops(onnx.load(str(p))) for p in (student_path, teacher_path))
    scenes = {split: make_scenes(split, n) for split, n in SCENES.items()}
    found = {
        (name, split): detections(path, scenes[split].images)
        for name, path in (("student", student_path), ("teacher", teacher_path))
        for split in SCENES
    }
    alone = {
        (name, split): coco_map(scenes[split], found[name, split])
        for name in ("student", "teacher")
        for split in SCENES
    }
    lines = [
        "## Detection (paper eqs. 12-14)",
        "",
        f"Fashion-MNIST scenes (`ebjr.tasks.detection.data`, synthetic compositions): thresholds "
        f"chosen on {SCENES['val']} validation scenes, reported on {SCENES['test']} test "
        f"scenes. Student {fs / 1e6:.1f} MFLOPs, Teacher {ft / 1e6:.1f} MFLOPs per image.",
        "",
        "| model | test mAP@[.5:.95] | test mAP@.5 |",
        "|---|---|---|",
        *[
            f"| {name} | {alone[name, 'test']['map']:.3f} | {alone[name, 'test']['map50']:.3f} |"
            for name in ("student", "teacher")
        ],
        "",
        "| score | target (share of the Teacher's val mAP) | test mAP | test mAP@.5 | to Teacher "
        "| fewer FLOPs than Teacher |",
        "|---|---|---|---|---|---|",
    ]
    student = {split: found["student", split] for split in SCENES}
    curves: dict[str, list[Point]] = {}
    teacher = {split: found["teacher", split] for split in SCENES}
    for label, terms in ABLATION.items():
        scores = {
            split: detection_energy(
                student[split]["class_logits"],
                student[split]["box_logits"],
                student[split]["valid"],
                BIN_WIDTH,
                terms,
            )
            for split in SCENES
        }
        points = sweep(scenes["val"], student["val"], teacher["val"], scores["val"], fs, ft)
        curves[label] = [
            measure(
                scenes["test"],
                student["test"],
                teacher["test"],
                scores["test"] >= q.threshold,
                fs,
                ft,
                q.threshold,
            )
            for q in points[:: max(len(points) // 10, 1)]
        ]
        for share in TARGETS:
            chosen = choose(points, share * alone["teacher", "val"]["map"] - 0.001 * (share == 1))
            p = measure(
                scenes["test"],
                student["test"],
                teacher["test"],
                scores["test"] >= chosen.threshold,
                fs,
                ft,
                chosen.threshold,
            )
            lines.append(
                f"| {label} | {share:.0%} | {p.map:.3f} | {p.map50:.3f} | {p.teacher_fraction:.1%} "
                f"| {ft / p.flops:.2f}x |"
            )
    # the oracle: the Teacher exactly where its detections are better (per-image F1 at .5)
    f1_student = f1_per_image(scenes["test"], student["test"])
    f1_teacher = f1_per_image(scenes["test"], teacher["test"])
    oracle = f1_student >= f1_teacher
    p = measure(scenes["test"], student["test"], teacher["test"], oracle, fs, ft, np.nan)
    lines.append(
        f"| oracle (the Teacher where its per-image F1@.5 is higher) | - | {p.map:.3f} | "
        f"{p.map50:.3f} | {p.teacher_fraction:.1%} | {ft / p.flops:.2f}x |"
    )
    # the floor of any score: images ranked by how much the Teacher's F1 beats the Student's,
    # cut at the cheapest point reaching 97% of the Teacher's test mAP (test labels: a bound)
    gain = (f1_teacher - f1_student).astype(np.float32)
    ranked = sweep(scenes["test"], student["test"], teacher["test"], -gain, fs, ft)
    p = choose(ranked, TARGETS[1] * alone["teacher", "test"]["map"])
    lines.append(
        f"| oracle ranking (Teacher first where its F1@.5 gains most; cut on test) | "
        f"{TARGETS[1]:.0%} of test | {p.map:.3f} | {p.map50:.3f} | {p.teacher_fraction:.1%} | "
        f"{ft / p.flops:.2f}x |"
    )
    rng = np.random.default_rng(0)
    for fraction in (0.25, 0.5):
        keep = rng.random(len(scenes["test"].images)) >= fraction
        p = measure(scenes["test"], student["test"], teacher["test"], keep, fs, ft, np.nan)
        lines.append(
            f"| random, {fraction:.0%} to Teacher | - | {p.map:.3f} | {p.map50:.3f} | "
            f"{p.teacher_fraction:.1%} | {ft / p.flops:.2f}x |"
        )
    points = {k: [(p.flops / ft, p.map) for p in c] for k, c in curves.items()}
    png = cost_plot(points, "test mAP@[.5:.95]", out.parent / "detection_map_vs_cost.png")
    lines += [*served(repo), "", f"![mAP against cost]({png})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    report_main(
        argv,
        __doc__,
        "DETECTION",
        Path("detection_models"),
        Path("evaluation/DETECTION.md"),
        evaluate,
    )


if __name__ == "__main__":
    main()
