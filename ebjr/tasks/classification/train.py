"""Train the default Student and Teacher on Fashion-MNIST, export them to ONNX and build the
default model repository with their measured metrics.

    python -m ebjr.tasks.classification.train [--out model_repository] [--three-stage] \
        [--teacher FILE]

Reproducible: fixed seed, deterministic CPU kernels, fixed data split (``ebjr.training.data``).
Every model's training state is checkpointed after each epoch under ``--work``: a run that is
stopped resumes where it left off and ends with the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from tqdm import tqdm

from ebjr.build.onnx_info import describe
from ebjr.core.calibration import calibrate_scores, cascade_flops
from ebjr.core.cascade_calibration import Stages, held_out_comparison
from ebjr.core.layout import STUDENT_CANDIDATES, candidate_gate
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.policy import GeneralPolicy, SpecializedPolicy
from ebjr.core.resize import resize_batch
from ebjr.core.scores import energy, get_score
from ebjr.tasks.classification import specialized as spec
from ebjr.tasks.classification.repository import Specialized, build_repository
from ebjr.training import data, models
from ebjr.training.fit import Checkpoint, take_step
from ebjr.training.onnx_export import export_checked

SEED = 0
SIZE = 28  # Fashion-MNIST's images are SIZE x SIZE; the Teacher and most Students take them so
# name: (architecture in ebjr.training.models, distilled from the Teacher, input size: a
# smaller one is the paper's low-resolution Student, fed the image resized by ebjr.core.resize)
CANDIDATES = {
    "student": ("student", False, SIZE),
    "student_kd": ("student", True, SIZE),
    "student_wide": ("student_wide", False, SIZE),
    "student_wide_kd": ("student_wide", True, SIZE),
    "student_mid_kd": ("student_mid", True, SIZE),
    "student_large_kd": ("student_large", True, SIZE),
    "student_large_kd_14px": ("student_large", True, 14),
    "student_large_kd_20px": ("student_large", True, 20),
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


@dataclass(frozen=True)
class Recipe:
    """How one classifier is trained: SGD with momentum and a one-cycle schedule on the
    ``train`` split, ``augment`` on every batch."""

    epochs: int
    lr: float = 0.05
    batch_size: int = 128
    nesterov: bool = False
    label_smoothing: float = 0.0
    channels_last: bool = False  # NHWC kernels: about 20% faster for the stride-1 Teacher

    def key(self, architecture: str, **extra) -> str:
        """A short digest of this recipe, the architecture and ``extra`` (the checkpoint name)."""
        text = json.dumps([asdict(self), models.ARCHITECTURES[architecture], extra], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


STUDENT_RECIPE = Recipe(epochs=6)
TEACHER_RECIPE = Recipe(epochs=15, lr=0.1, nesterov=True, label_smoothing=0.1, channels_last=True)
TEACHER_MEMBERS = 2  # the Teacher is an ensemble of this many seeds (``make teacher-study``)
TEACHER_VIEWS = {"single": False, "flip_tta": True}  # Teacher candidates: test-time flip or not


def train(
    name: str,
    recipe: Recipe,
    popular: tuple[int, ...] | None = None,
    teacher: MemoTeacher | None = None,
    label: str | None = None,
    checkpoints: Path | None = None,
    seed: int = SEED,
    size: int = SIZE,
) -> tuple[nn.Module, float]:
    """Train architecture ``name`` on the ``train`` split by ``recipe``; return the model (in
    eval mode) and the seconds its training took (over every run, when resumed).

    With ``popular``, train a specialized model: those classes plus one "other" class holding
    every remaining class (paper section 2.4). With ``teacher``, distil from it: the Teacher
    answers every augmented batch the Student sees (``distillation_loss``; ``teacher.key``
    names it in the checkpoint key, so a new Teacher retrains its Students). With
    ``checkpoints``, save the whole training state there after every epoch and resume from it:
    an interrupted run picks up where it stopped and ends with the same weights, bit for bit.
    ``seed`` draws the initial weights and the batches (another seed: another ensemble member).
    A ``size`` below ``SIZE`` trains on every augmented batch resized to ``size`` x ``size``
    (``ebjr.core.resize``, as the router serves it); a Teacher still answers the full batch.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, labels = data.load_split("train")
    if popular is not None:
        labels = spec.relabel(labels, popular)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    model = models.build(name, num_classes=int(labels.max()) + 1)
    memory = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=5e-4, nesterov=recipe.nesterov
    )
    batches = len(labels) // recipe.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * batches
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    key = recipe.key(
        name,
        popular=popular,
        teacher=teacher.key if teacher else None,
        **({} if seed == SEED else {"seed": seed}),  # SEED's keys predate the argument
        **({} if size == SIZE else {"size": size}),  # and SIZE's predate this one
    )
    state = Checkpoint(checkpoints, name, key, label or name)
    start, seconds = state.restore(model, optimizer, schedule, generator)
    model.train()
    for epoch in range(start, recipe.epochs):
        began = time.perf_counter()
        order = torch.randperm(len(labels), generator=generator)
        desc = f"{label or name} epoch {epoch + 1}/{recipe.epochs}"
        progress = tqdm(range(batches), desc=desc, unit="batch")
        for step in progress:
            rows = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            full = augment(images[rows], generator)
            batch = (
                full if size == SIZE else torch.from_numpy(resize_batch(full.numpy(), size, size))
            )
            batch = batch.contiguous(memory_format=memory)
            if teacher is None:
                loss = loss_fn(model(batch), labels[rows])
            else:
                soft = torch.from_numpy(teacher(full.contiguous(memory_format=memory).numpy()))
                loss = distillation_loss(model(batch), soft, labels[rows])
            take_step(loss, optimizer, schedule, progress, step)
        seconds += time.perf_counter() - began
        state.save(epoch + 1, seconds, model, optimizer, schedule, generator)
    return model.eval().to(memory_format=torch.contiguous_format), seconds


def export(model: nn.Module, path: Path, size: int = SIZE) -> None:
    """Export ``model`` (of ``size`` x ``size`` inputs) to ONNX with a dynamic batch axis and
    check it against Torch."""
    example = resize_batch(data.load_split("val")[0][:64], size, size)
    export_checked(model, path, example, ["logits"])


def accuracy(path: Path, split: str) -> float:
    images, labels = data.load_split(split)
    return float((OnnxClassifier(path, threads=2).predict(images).argmax(1) == labels).mean())


def model_metrics(path: Path, architecture: str, recipe: Recipe, seconds: float) -> dict:
    """What ``metrics.json`` records of one trained classifier."""
    return {
        "architecture": models.ARCHITECTURES[architecture],
        "recipe": asdict(recipe),
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


def export_views(
    architecture: str,
    recipe: Recipe,
    out: Path,
    checkpoints: Path,
    label: str,
    members: int = 1,
) -> dict[str, dict]:
    """Train ``members`` models of ``architecture`` by ``recipe``, one per seed from ``SEED``
    on (checkpointed in ``checkpoints``), and export their ensemble (``members == 1``: the
    model itself) in every view of ``TEACHER_VIEWS`` as ``out/teacher_{view}.onnx``; return
    each view's ``model_metrics`` (plus ``members`` and ``test_time_flip``; ``train_seconds``
    over every member)."""
    out.mkdir(parents=True, exist_ok=True)
    trained = [
        train(
            architecture,
            recipe,
            label=label if seed == SEED else f"{label} seed {seed}",
            checkpoints=checkpoints,
            seed=seed,
        )
        for seed in range(SEED, SEED + members)
    ]
    model = trained[0][0] if members == 1 else models.Ensemble([m for m, _ in trained])
    seconds = sum(s for _, s in trained)
    views = {}
    for view, flip in TEACHER_VIEWS.items():
        path = out / f"teacher_{view}.onnx"
        export(models.FlipAverage(model) if flip else model, path)
        views[view] = {
            "members": members,
            "test_time_flip": flip,
            **model_metrics(path, architecture, recipe, seconds),
        }
        log.info(json.dumps({f"{label} {view}": views[view]}))
    return views


def most_accurate(candidates: dict) -> object:
    """The key of the candidate (``model_metrics``) most accurate on ``val``, the one with fewer
    FLOPs on a tie."""
    return max(candidates, key=lambda k: (candidates[k]["val_accuracy"], -candidates[k]["flops"]))


def train_teacher(work: Path, metrics: dict) -> dict:
    """Train the Teacher (``TEACHER_MEMBERS`` seeds by ``TEACHER_RECIPE``) and keep, as
    ``work/teacher.onnx``, its most accurate view on ``val`` (the cheaper one on a tie).
    Records every view under ``teacher_candidates``; returns the chosen Teacher's metrics."""
    views = export_views(
        "teacher", TEACHER_RECIPE, work, work / "checkpoints", "teacher", TEACHER_MEMBERS
    )
    chosen = most_accurate(views)
    shutil.copyfile(work / f"teacher_{chosen}.onnx", work / "teacher.onnx")
    metrics["teacher_candidates"] = {"chosen": chosen, "by": "val_accuracy", "candidates": views}
    return {"candidate": chosen, **views[chosen]}


class MemoTeacher:
    """The Teacher's logits for a batch, computed once: every distilled candidate sees the same
    augmented batches (one seed), so the Teacher answers each batch only for the first.
    ``batch: (N, 1, H, W) float32 -> (N, C) float32``."""

    def __init__(self, path: Path) -> None:
        self.teacher = OnnxClassifier(path, threads=2)
        self.key = hashlib.sha256(path.read_bytes()).hexdigest()[:12]  # names the Teacher
        self.answers: dict[bytes, np.ndarray] = {}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch)
        key = hashlib.sha1(batch.tobytes(), usedforsecurity=False).digest()  # a cache key
        if key not in self.answers:
            self.answers[key] = self.teacher(batch)
        return self.answers[key]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.teacher.predict(images)


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
    from ebjr.core.gate import GATE_SCORE, GateScore
    from ebjr.tasks.classification.gate_training import export_gate, train_gate

    args.candidates.mkdir(parents=True, exist_ok=True)
    teacher = MemoTeacher(teacher_path)
    teacher_flops = describe(teacher_path).flops
    (val_x, val_y), (train_x, train_y) = data.load_split("val"), data.load_split("train")
    teacher_val, teacher_train = teacher.predict(val_x), teacher.predict(train_x)
    candidates, stages = {}, {}
    for name, (architecture, distilled, size) in CANDIDATES.items():
        model, seconds = train(
            architecture,
            STUDENT_RECIPE,
            teacher=teacher if distilled else None,
            label=name,
            checkpoints=args.work / "checkpoints",
            size=size,
        )
        path = args.candidates / f"{name}.onnx"
        export(model, path, size)
        entry = model_metrics(path, architecture, STUDENT_RECIPE, seconds)
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
        score = GateScore(gate) if record.scores[0] == GATE_SCORE else get_score(record.scores[0])
        stages[name] = (score(logits), logits.argmax(1) == val_y, entry["flops"])
        candidates[name] = {
            **entry,
            "distilled": distilled,
            "val_score": record.scores[0],
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
        model, seconds = train(
            "student",
            STUDENT_RECIPE,
            popular=popular,
            label=f"student on {popular}",
            checkpoints=args.work / "checkpoints",
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
            "train_seconds": round(seconds, 1),
            "val_accuracy_popular_rows": float(
                policy.student_correct(logits[on_popular], labels[on_popular]).mean()
            ),
            "val_other_recall": float((logits[~on_popular].argmax(1) == c).mean()),
            "stream_share": args.share,
            "stream_score": record.scores[0],
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
        metrics["models"]["teacher"] = train_teacher(args.work, metrics)
    else:  # keep a Teacher trained before (e.g. the committed one): retrain the Students only
        shutil.copyfile(args.teacher, teacher_path)
        before = json.loads((args.out / "metrics.json").read_text())
        metrics["models"]["teacher"] = before["models"]["teacher"]
        if "teacher_candidates" in before:
            metrics["teacher_candidates"] = before["teacher_candidates"]
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
        f"{', '.join(record.scores)}, default (parity) thresholds {record.parity_thresholds}"
    )


if __name__ == "__main__":
    main()
