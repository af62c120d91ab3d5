"""Train the default Student and Teacher on Fashion-MNIST, export them to ONNX and build the
default model repository with their measured metrics.

    python -m ebjr.train [--out model_repository] [--epochs-student 6] [--epochs-teacher 8]

Reproducible: fixed seed, deterministic CPU kernels, fixed data split (``ebjr.data``).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from tqdm import tqdm

from ebjr import data, models
from ebjr import specialized as spec
from ebjr.calibration import calibrate_scores, cascade_flops
from ebjr.cascade import Stages, held_out_comparison
from ebjr.layout import STUDENT_CANDIDATES, candidate_gate
from ebjr.onnx_export import export_checked
from ebjr.onnx_info import describe
from ebjr.onnx_runner import OnnxClassifier
from ebjr.policy import GeneralPolicy, SpecializedPolicy
from ebjr.repository import Specialized, build_repository
from ebjr.scores import energy, get_score

SEED = 0
CANDIDATES = {  # name: (architecture in ebjr.models, distilled from the Teacher)
    "student": ("student", False),
    "student_kd": ("student", True),
    "student_wide": ("student_wide", False),
    "student_wide_kd": ("student_wide", True),
}
KD_T, KD_ALPHA = 4.0, 0.7  # distillation temperature and weight of the Teacher's soft targets
log = logging.getLogger(__name__)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random horizontal flip per image, and one random shift of up to 2 pixels shared by
    the whole batch (one draw per batch keeps the committed models' training reproducible)."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    padded = nn.functional.pad(images, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Hinton's knowledge distillation: ``ALPHA`` of KL to the Teacher's softened answer at
    temperature ``KD_T`` (scaled by T^2), the rest cross-entropy. Logits: (N, C)."""
    soft = nn.functional.kl_div(
        torch.log_softmax(logits / KD_T, dim=1),
        torch.log_softmax(teacher_logits / KD_T, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return KD_ALPHA * KD_T**2 * soft + (1 - KD_ALPHA) * nn.functional.cross_entropy(logits, labels)


def train(
    name: str,
    epochs: int,
    batch_size: int = 128,
    lr: float = 0.05,
    popular: tuple[int, ...] | None = None,
    teacher: OnnxClassifier | None = None,
    label: str | None = None,
) -> nn.Module:
    """Train architecture ``name`` on the ``train`` split with SGD and a one-cycle schedule.

    With ``popular``, train a specialized model: those classes plus one "other" class holding
    every remaining class (paper section 2.4). With ``teacher``, distil from it: the Teacher
    answers every augmented batch the Student sees (``distillation_loss``).
    """
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    images, labels = data.load_split("train")
    if popular is not None:
        labels = spec.relabel(labels, popular)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    model = models.build(name, num_classes=int(labels.max()) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (len(labels) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        batches = range(len(labels) // batch_size)
        progress = tqdm(batches, desc=f"{label or name} epoch {epoch + 1}/{epochs}", unit="batch")
        for step in progress:
            rows = order[step * batch_size : (step + 1) * batch_size]
            batch = augment(images[rows], generator)
            if teacher is None:
                loss = loss_fn(model(batch), labels[rows])
            else:
                soft = torch.from_numpy(teacher(batch.numpy()))
                loss = distillation_loss(model(batch), soft, labels[rows])
            take_step(loss, optimizer, schedule, progress, step)
    return model.eval()


def fit(
    model: nn.Module,
    rows: int,
    epochs: int,
    batch_size: int,
    lr: float,
    loss: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    label: str,
) -> nn.Module:
    """Train ``model`` with AdamW and a one-cycle schedule for ``epochs`` passes over ``rows``
    examples in ``generator``'s shuffled order; ``loss(batch_rows)`` is the loss of one batch
    (its row indices). Returns the model in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (rows // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(rows, generator=generator)
        progress = tqdm(range(rows // batch_size), desc=f"{label} epoch {epoch + 1}/{epochs}")
        for step in progress:
            batch = order[step * batch_size : (step + 1) * batch_size]
            take_step(loss(batch), optimizer, schedule, progress, step)
    return model.eval()


def take_step(loss, optimizer, schedule, progress, step: int) -> None:
    """One optimiser and schedule step on ``loss``; the loss on the progress bar every 50."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
    if step % 50 == 0:
        progress.set_postfix(loss=f"{loss.item():.3f}")


def export(model: nn.Module, path: Path) -> None:
    """Export ``model`` to ONNX with a dynamic batch axis and check it against Torch."""
    export_checked(model, path, data.load_split("val")[0][:64], ["logits"])


def accuracy(path: Path, split: str) -> float:
    images, labels = data.load_split(split)
    return float((OnnxClassifier(path, threads=2).predict(images).argmax(1) == labels).mean())


def model_metrics(path: Path, architecture: str, epochs: int, seconds: float) -> dict:
    """What ``metrics.json`` records of one trained classifier."""
    return {
        "architecture": models.ARCHITECTURES[architecture],
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "val_accuracy": accuracy(path, "val"),
        "test_accuracy": accuracy(path, "test"),
        "parameters": describe_parameters(path),
        **describe(path).to_dict(),
    }


def describe_parameters(path: Path) -> int:
    """The number of weights in an ONNX file's initializers."""
    graph = onnx.load(str(path)).graph
    return int(sum(np.prod(t.dims) for t in graph.initializer))


def train_students(
    args: argparse.Namespace, teacher_path: Path, metrics: dict
) -> tuple[Path, tuple[Path, ...]]:
    """Train every candidate of ``CANDIDATES``; return the Student and the middle
    stages (none, or one) of the cascade to serve.

    The two-stage choice is the candidate whose cascade with the Teacher (with its best
    routing score, a learned gate included) reaches the Teacher's validation accuracy at the
    lowest average FLOPs, the Student's on every image counted. Then a smaller candidate in
    front of it makes a three-stage cascade (``three_stage``), served with ``--three-stage``.
    Each candidate's gate is trained on the ``train`` split; every choice uses ``val`` only,
    and ``test`` is reported, never used. Records every candidate under ``student_candidates``.
    """
    from ebjr.gate import GATE_SCORE, GateScore
    from ebjr.gate_training import export_gate, train_gate

    args.candidates.mkdir(parents=True, exist_ok=True)
    teacher = OnnxClassifier(teacher_path, threads=2)
    teacher_flops = describe(teacher_path).flops
    (val_x, val_y), (train_x, train_y) = data.load_split("val"), data.load_split("train")
    teacher_val, teacher_train = teacher.predict(val_x), teacher.predict(train_x)
    candidates, stages = {}, {}
    for name, (architecture, distilled) in CANDIDATES.items():
        start = time.perf_counter()
        model = train(
            architecture,
            args.epochs_student,
            teacher=teacher if distilled else None,
            label=name,
        )
        path = args.candidates / f"{name}.onnx"
        export(model, path)
        entry = model_metrics(path, architecture, args.epochs_student, time.perf_counter() - start)
        student = OnnxClassifier(path, threads=2)
        net = train_gate(student.predict(train_x), teacher_train, train_y)
        gate = export_gate(net, teacher_val.shape[1], candidate_gate(path))
        logits = student.predict(val_x)
        record = calibrate_scores(
            logits,
            teacher_val,
            val_y,
            entry["flops"],
            teacher_flops,
            GeneralPolicy(energy),
            extra_scores={GATE_SCORE: GateScore(gate)},
        )
        score = GateScore(gate) if record.score == GATE_SCORE else get_score(record.score)
        stages[name] = (score(logits), logits.argmax(1) == val_y, entry["flops"])
        candidates[name] = {
            **entry,
            "distilled": distilled,
            "val_score": record.score,
            "val_parity_teacher_fraction": record.parity_teacher_fraction,
            "val_fewer_flops_than_teacher_at_parity": teacher_flops
            / cascade_flops(entry["flops"], teacher_flops, record.parity_teacher_fraction),
        }
        log.info(json.dumps({name: candidates[name]}))
    chosen = max(candidates, key=lambda n: candidates[n]["val_fewer_flops_than_teacher_at_parity"])
    metrics["student_candidates"] = {"chosen": chosen, "by": "val", "candidates": candidates}
    metrics["models"]["student"] = {"candidate": chosen, **candidates[chosen]}
    teacher_ok = teacher_val.argmax(1) == val_y
    first = three_stage(stages, chosen, teacher_ok, teacher_flops, metrics)
    metrics["three_stage"]["served"] = args.three_stage
    if not args.three_stage:
        return args.candidates / f"{chosen}.onnx", ()
    metrics["models"]["student"] = {"candidate": first, **candidates[first]}
    metrics["models"]["student_2"] = {"candidate": chosen, **candidates[chosen]}
    return args.candidates / f"{first}.onnx", (args.candidates / f"{chosen}.onnx",)


def three_stage(
    stages: dict[str, tuple[np.ndarray, np.ndarray, float]],
    middle: str,
    teacher_ok: np.ndarray,
    teacher_flops: float,
    metrics: dict,
) -> str:
    """Put each cheaper candidate in front of ``middle`` (the best two-stage Student) and
    record, under ``three_stage``, how the best such three-stage cascade compares with the
    two-stage one at parity on ``val``: in FLOPs, and on held-out halves
    (``held_out_comparison``). ``stages[name]``: (val scores (N,), val correct (N,), FLOPs).
    Returns the first stage's candidate name."""
    score, ok, flops = stages[middle]
    two = Stages([score], [ok, teacher_ok], [flops, teacher_flops])
    fronts = {
        name: Stages([s, score], [o, ok, teacher_ok], [f, flops, teacher_flops])
        for name, (s, o, f) in stages.items()
        if f < flops
    }
    cost = {name: cascade.parity()[1] for name, cascade in fronts.items()}
    best = min(cost, key=cost.get)
    metrics["three_stage"] = {
        "stages": [best, middle, "teacher"],
        "val_fewer_flops_than_teacher_at_parity": teacher_flops / cost[best],
        "two_stage_val_fewer_flops_than_teacher_at_parity": teacher_flops / two.parity()[1],
        "val_held_out": held_out_comparison(fronts[best], two),
    }
    log.info(json.dumps({"three_stage": metrics["three_stage"]}))
    return best


def train_specialized(args: argparse.Namespace, metrics: dict) -> Specialized:
    """Train a specialized Student for every candidate C and keep the one that reaches the
    Teacher's accuracy cheapest on a validation stream with ``args.share`` popular rows."""
    order = tuple(int(c) for c in args.popular_order.split(","))
    images, labels = data.load_split("val")
    teacher = OnnxClassifier(args.work / "teacher.onnx", threads=2).predict(images)
    teacher_flops = describe(args.work / "teacher.onnx").flops
    candidates = {}
    for c in args.candidate_c:
        popular = order[:c]
        start = time.perf_counter()
        model = train(
            "student", args.epochs_student, popular=popular, label=f"student on {popular}"
        )
        path = args.work / f"student_specialized_c{c}.onnx"
        export(model, path)
        logits = OnnxClassifier(path, threads=2).predict(images)
        rows = spec.skewed_stream(labels, popular, args.share, len(labels), seed=SEED)
        policy = SpecializedPolicy(energy, popular, c, num_classes=teacher.shape[1])
        record = calibrate_scores(
            logits[rows], teacher[rows], labels[rows], describe(path).flops, teacher_flops, policy
        )
        on_popular = np.isin(labels, popular)
        candidates[c] = {
            "popular": list(popular),
            "train_seconds": round(time.perf_counter() - start, 1),
            "val_accuracy_popular_rows": float(
                policy.student_correct(logits[on_popular], labels[on_popular]).mean()
            ),
            "val_other_recall": float((logits[~on_popular].argmax(1) == c).mean()),
            "stream_share": args.share,
            "stream_score": record.score,
            "stream_parity_teacher_fraction": record.parity_teacher_fraction,
            "flops": describe(path).flops,
        }
        log.info(json.dumps({f"specialized C={c}": candidates[c]}))
    chosen = min(candidates, key=lambda c: candidates[c]["stream_parity_teacher_fraction"])
    metrics["specialized"] = {"chosen_c": chosen, "candidates": candidates}
    return Specialized(
        args.work / f"student_specialized_c{chosen}.onnx", order[:chosen], args.share
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("model_repository"))
    parser.add_argument("--work", type=Path, default=Path("build/models"))
    parser.add_argument("--epochs-student", type=int, default=6)
    parser.add_argument("--epochs-teacher", type=int, default=8)
    parser.add_argument(
        "--candidates",
        type=Path,
        default=STUDENT_CANDIDATES,
        help="where every candidate Student's ONNX file is kept",
    )
    parser.add_argument(
        "--three-stage",
        action="store_true",
        help="serve the three-stage cascade (smaller candidate -> chosen Student -> Teacher); "
        "BENCHMARKS.md measures why two stages are the default",
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        help="reuse this Teacher ONNX file (its metrics from OUT/metrics.json) instead of "
        "training one",
    )
    parser.add_argument(
        "--popular-order",
        default="0,1,2,3,4,5,6,7,8,9",
        help="classes, most popular first; top-C = the first C",
    )
    parser.add_argument(
        "--candidate-c",
        type=int,
        nargs="+",
        default=[2, 3, 5],
        help="a specialized Student per C; the cheapest is kept",
    )
    parser.add_argument(
        "--share",
        type=float,
        default=0.75,
        help="popular share of the validation stream that picks C",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    args.work.mkdir(parents=True, exist_ok=True)

    metrics: dict = {
        "dataset": "Fashion-MNIST",
        "seed": SEED,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "models": {},
    }
    teacher_path = args.work / "teacher.onnx"
    if args.teacher is None:
        start = time.perf_counter()
        export(train("teacher", args.epochs_teacher), teacher_path)
        metrics["models"]["teacher"] = model_metrics(
            teacher_path, "teacher", args.epochs_teacher, time.perf_counter() - start
        )
    else:  # keep a Teacher trained before (e.g. the committed one): retrain the Students only
        shutil.copyfile(args.teacher, teacher_path)
        metrics["models"]["teacher"] = json.loads((args.out / "metrics.json").read_text())[
            "models"
        ]["teacher"]
    student_path, middle = train_students(args, teacher_path, metrics)
    metrics["models"] = {"student": metrics["models"].pop("student"), **metrics["models"]}

    specialized = train_specialized(args, metrics)
    record = build_repository(
        student_path,
        teacher_path,
        args.out,
        validation=data.load_split("val"),
        specialized=specialized,
        gate_data=data.load_split("train"),  # never the validation split it is calibrated on
        middle=middle,
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"Wrote {args.out} and {args.out / 'metrics.json'}; calibrated on val: score "
        f"{record.scores}, default (parity) thresholds {record.parity_thresholds}"
    )


if __name__ == "__main__":
    main()
