"""Write a Triton model repository for any ONNX Student/Teacher classifier pair.

    python -m ebjr.tasks.classification.repository --student S.onnx --teacher T.onnx \
        --out model_repository

Produces ``student/``, ``teacher/`` and ``ebjr_router/``. Input/output names, shapes and dtypes
are read from the ONNX files; a Student and Teacher that disagree on the input or the class
count are refused.

Student and Teacher are served by Triton's native ONNX Runtime backend (``platform:
"onnxruntime_onnx"``, built by ``make backend``) on CPU by default. ``--device gpu`` writes
``KIND_GPU`` instances of the same files for NVIDIA's Triton container (CUDA execution
provider; ``--tensorrt`` adds the TensorRT accelerator). ``--backend python`` wraps onnxruntime
in the Python backend instead, for a host that cannot compile the native backend.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ebjr.build import model_config as mc
from ebjr.build.model_config import BACKENDS, DEVICES, ModelServing
from ebjr.build.onnx_info import describe
from ebjr.build.repository import (
    add_deadline_argument,
    publish,
    router_settings,
    write_model_py,
    write_onnx_model,
    write_router,
)
from ebjr.build.risk_control import cascade_risk, two_stage_risk
from ebjr.build.router_config import (
    STAGE_SHAPES,
    RouterSettings,
    shapes_parameter,
    stages_parameter,
)
from ebjr.core.calibration import Calibration, calibrate_scores
from ebjr.core.cascade_calibration import calibrate_cascade
from ebjr.core.gate import GATE_SCORE, GateScore, routing_score
from ebjr.core.layout import (
    DECODER,
    ROUTER,
    SPECIALIZED_ROUTER,
    SPECIALIZED_STUDENT,
    STUDENT,
    TEACHER,
    TEACHER_BYTES,
    VERSION,
    config_path,
    gate_path,
    middle_stage,
    onnx_path,
)
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.policy import (
    DEFAULT_MODE,
    POLICIES,
    GeneralPolicy,
    SpecializedPolicy,
    policy_from_parameters,
)
from ebjr.core.preprocess import Preprocessing
from ebjr.core.remote import check_url
from ebjr.core.scores import ScoreContext, ScoreFn, energy
from ebjr.core.tensors import ModelInfo, TensorSpec
from ebjr.tasks.classification import ROUTER_SPEC
from ebjr.tasks.classification import specialized as spec
from ebjr.tasks.classification.logits import PairLogits, load_logits, run_pair
from ebjr.training.data import add_labelled_argument, load_labelled


@dataclass(frozen=True)
class Specialized:
    """A specialized Student (paper section 2.4): ONNX with ``len(popular) + 1`` outputs, the
    last one "other"; ``popular[i]`` is the Teacher label of its output ``i``. Calibrated on a
    validation stream where ``share`` of the rows come from the popular classes."""

    onnx: Path
    popular: tuple[int, ...]
    share: float = 0.75

    @property
    def other_index(self) -> int:
        return len(self.popular)

    def policy(self, score: ScoreFn, num_classes: int) -> SpecializedPolicy:
        """Its routing policy (eqs. 16-18) for a Teacher of ``num_classes`` classes."""
        return SpecializedPolicy(score, self.popular, self.other_index, num_classes)


def router_model_config(
    student: ModelInfo,
    teacher: ModelInfo,
    settings: RouterSettings,
    specialized: Specialized | None = None,
    middle: tuple[ModelInfo, ...] = (),
    policy: str = DEFAULT_MODE,
) -> mc.ModelConfig:
    """The BLS router's config: input ``image`` (the largest stage input: ``router_input``;
    ``stage_shapes`` where a stage takes another size), per-row outputs in the Teacher's label
    space, the models it calls (``middle`` stages between Student and Teacher), the routing
    ``policy`` (a mode of ``POLICIES``) and ``settings`` as parameters."""
    values = {
        "student_model": SPECIALIZED_STUDENT if specialized else STUDENT,
        "student_input": student.input.name,
        "student_output": student.output.name,
        "teacher_model": TEACHER,
        "teacher_input": teacher.input.name,
        "teacher_output": teacher.output.name,
        **settings.parameters(),
    }
    chosen = (
        specialized.policy(energy, teacher.num_classes)
        if specialized is not None
        else policy_from_parameters({"mode": policy}, energy, teacher.num_classes)
    )
    values.update(chosen.to_parameters())
    if middle:
        values["middle_stages"] = stages_parameter(
            [(middle_stage(k), m.input.name, m.output.name) for k, m in enumerate(middle, 1)]
        )
    stages = (student, *middle, teacher)
    image = router_input(stages)
    if any(stage.input.shape != image.shape for stage in stages):
        values[STAGE_SHAPES] = shapes_parameter([stage.input.shape for stage in stages])
    outputs = ROUTER_SPEC.tensors(
        {"logits": teacher.output.shape, "class": (1,)},
        boundaries=len(middle) + 1,
        dtypes={"logits": teacher.output.triton_dtype},
    )
    return mc.python_router(
        SPECIALIZED_ROUTER if specialized else ROUTER,
        image,
        outputs,
        settings.admission_window,
        settings.instances,
        settings.max_queue_delay_us,
        values,
    )


def check_inputs(stage: ModelInfo, teacher: ModelInfo, what: str = "Student") -> None:
    """Refuse a stage whose input the router cannot make from the Teacher's: the same dtype
    and shape, or float images of the same channels at another height and width (resized per
    stage, ``ebjr.core.resize``)."""
    a, b = stage.input, teacher.input
    resizable = (
        a.triton_dtype == b.triton_dtype == "TYPE_FP32"
        and len(a.shape) == len(b.shape) == 3
        and a.shape[0] == b.shape[0]
    )
    if a.triton_dtype != b.triton_dtype or (a.shape != b.shape and not resizable):
        raise ValueError(
            f"{what} input {a.shape} {a.triton_dtype} differs from Teacher input {b.shape} "
            f"{b.triton_dtype}: stages may differ only in the height and width of float images"
        )


def router_input(stages: tuple[ModelInfo, ...]) -> TensorSpec:
    """The router's ``image`` input: the largest of ``stages``' inputs, which every other
    stage's must fit in (each is resized down to its own, ``stage_shapes``)."""
    largest = max((s.input for s in stages), key=lambda t: np.prod(t.shape))
    for stage in stages:
        if any(d > big for d, big in zip(stage.input.shape, largest.shape, strict=True)):
            raise ValueError(
                f"stage inputs {stage.input.shape} and {largest.shape}: one stage's input must "
                "be at least as large as every other's in each dimension (the router takes it)"
            )
    return largest


def check_pair(student: ModelInfo, teacher: ModelInfo) -> None:
    """Refuse a Student/Teacher pair the router cannot join."""
    check_inputs(student, teacher)
    if student.num_classes != teacher.num_classes:
        raise ValueError(
            f"Student has {student.num_classes} classes but Teacher has {teacher.num_classes}: "
            "EBJR needs the same label space (eq. 7)"
        )


def check_specialized(student: ModelInfo, teacher: ModelInfo, spec: Specialized) -> None:
    """Refuse a specialized Student whose outputs do not match ``spec.popular`` + "other"."""
    check_inputs(student, teacher, "specialized Student")
    if student.num_classes != len(spec.popular) + 1:
        raise ValueError(
            f"specialized Student has {student.num_classes} outputs; expected "
            f"{len(spec.popular) + 1} ({len(spec.popular)} popular classes + 'other')"
        )
    if len(set(spec.popular)) != len(spec.popular) or not all(
        0 <= c < teacher.num_classes for c in spec.popular
    ):
        raise ValueError(f"popular classes {spec.popular} must be distinct Teacher labels")


def calibrate_router(
    out: Path,
    validation: tuple[np.ndarray, np.ndarray] | PairLogits,
    pinned_score: str | None = None,
    temperature: float = 1.0,
    specialized: Specialized | None = None,
) -> Calibration:
    """Calibrate the router on labelled validation data (never the test split): ``(images,
    labels)`` the repository's Student and Teacher are run on, or their ``PairLogits``
    computed elsewhere. Writes the router's ``calibration.json``; returns its record. The
    specialized router is calibrated on a stream with ``specialized.share`` popular rows."""
    student_name = SPECIALIZED_STUDENT if specialized else STUDENT
    router = SPECIALIZED_ROUTER if specialized else ROUTER
    if isinstance(validation, PairLogits):
        pair = validation if specialized is None else validation.specialized_pair()
        if specialized is not None:
            labels = pair.labels
            pair = pair.rows(
                spec.skewed_stream(labels, specialized.popular, specialized.share, len(labels))
            )
    else:
        images, labels = validation
        if specialized is not None:
            rows = spec.skewed_stream(labels, specialized.popular, specialized.share, len(labels))
            images, labels = images[rows], labels[rows]
        pair = run_pair(out, student_name, images, labels)
    models = {name: onnx_path(out, name) for name in (student_name, TEACHER)}
    teacher = describe(models[TEACHER])
    named = mc.parameters(mc.read(config_path(out, router)))
    policy = policy_from_parameters(named, energy, teacher.num_classes)
    gate = gate_path(out, router)
    record = calibrate_scores(
        pair.student,
        pair.teacher,
        pair.labels,
        describe(models[student_name]).flops,
        teacher.flops,
        policy,
        pinned=pinned_score,
        temperature=temperature,
        extra_scores={GATE_SCORE: GateScore(gate)} if gate.exists() else None,
        stages=(student_name, TEACHER),
    )
    served = policy.with_score(
        routing_score(record.scores[0], ScoreContext(record.temperature, out / router))
    )
    scores = served.effective_scores(pair.student)
    teacher_answers = pair.teacher.argmax(axis=1)
    risk = two_stage_risk(
        scores,
        policy.student_correct(pair.student, pair.labels) | (teacher_answers != pair.labels),
        policy.keeps_everything_at_minus_inf,
    )
    kept = scores >= record.parity_thresholds[0]
    agrees = policy.student_correct(pair.student, teacher_answers)
    record = replace(
        record, risk=risk, kept_disagreement=(int(kept.sum()), int((kept & ~agrees).sum()))
    )
    if specialized is not None:
        record = replace(record, popular=specialized.popular, share=specialized.share)
    publish(out, router, record)
    return record


def calibrate_cascade_router(
    out: Path,
    validation: tuple[np.ndarray, np.ndarray] | PairLogits,
    middle: int,
    pinned_score: str | None = None,
    temperature: float = 1.0,
) -> Calibration:
    """Calibrate the N-stage router (``middle`` middle stages) on labelled validation data
    (``(images, labels)`` every stage is run on, or their ``PairLogits`` with ``middle``):
    each boundary routes on the score that serves its own stage best against the Teacher
    (a gate where it measures cheaper), then the cheapest threshold tuple reaching the
    Teacher's accuracy is searched jointly. Writes and returns its ``calibration.json``."""
    stages = (STUDENT, *(middle_stage(k) for k in range(1, middle + 1)), TEACHER)
    paths = [onnx_path(out, name) for name in stages]
    if isinstance(validation, PairLogits):
        logits = [validation.student, *validation.middle, validation.teacher]
        labels = validation.labels
    else:
        images, labels = validation
        logits = [OnnxClassifier(path, threads=2).predict(images) for path in paths]
    flops = [describe(path).flops for path in paths]
    names, scores = [], []
    for k, stage_logits in enumerate(logits[:-1]):
        gate = gate_path(out, ROUTER, k)
        record = calibrate_scores(
            stage_logits,
            logits[-1],
            labels,
            flops[k],
            flops[-1],
            GeneralPolicy(energy),
            pinned=pinned_score,
            temperature=temperature,
            extra_scores={GATE_SCORE: GateScore(gate)} if gate.exists() else None,
        )
        names.append(record.scores[0])
        score = routing_score(record.scores[0], ScoreContext(temperature, out / ROUTER, k))
        scores.append(GeneralPolicy(score).effective_scores(stage_logits))
    correct = [stage_logits.argmax(1) == labels for stage_logits in logits]
    cascade = calibrate_cascade(stages, tuple(names), scores, correct, flops)
    safe = [right | ~correct[-1] for right in correct[:-1]]  # nothing lost to the Teacher
    cascade = replace(cascade, risk=cascade_risk(scores, safe, flops))
    publish(out, ROUTER, cascade)
    return cascade


def build_repository(
    student_onnx: Path,
    teacher_onnx: Path,
    out: Path,
    settings: RouterSettings | None = None,
    serving: ModelServing | None = None,
    validation: tuple[np.ndarray, np.ndarray] | PairLogits | None = None,
    pinned_score: str | None = None,
    specialized: Specialized | None = None,
    gate_data: tuple[np.ndarray, np.ndarray] | PairLogits | None = None,
    middle: tuple[Path, ...] = (),
    gates: tuple[Path, ...] = (),
    policy: str = DEFAULT_MODE,
) -> Calibration | None:
    """Write ``out/{student,teacher,ebjr_router}`` for the given ONNX pair, and with
    ``specialized`` also ``out/{student_specialized,ebjr_specialized}``. ``policy`` names the
    general router's routing policy (a mode of ``POLICIES``; plain EBJR by default).

    With ``middle`` ONNX files the general router is an N-stage cascade: Student, then each
    middle stage (``out/student_2``, ...) on the rows the stages before it did not keep, then
    the Teacher; it is calibrated with ``calibrate_cascade_router``.

    With ``gate_data`` (images, labels; never the validation data) a learned deferral gate is
    trained for each of the general router's stage boundaries and offered to calibration as
    the score ``gate``; a two-stage router's gate can also train on ``PairLogits``. ``gates``
    gives gates trained before instead, one ONNX file per stage boundary.

    ``serving`` says how Student and Teacher are served (native ONNX Runtime backend on CPU by
    default). With ``validation`` (images, labels, or a two-stage pair's ``PairLogits``
    computed elsewhere) the router is calibrated on it and the calibration record is
    returned. Without it, ``settings`` must give a numeric default
    threshold and a score name.
    """
    serving = serving or ModelServing()
    student, teacher = describe(student_onnx), describe(teacher_onnx)
    check_pair(student, teacher)
    settings = router_settings(settings, serving, teacher_onnx, teacher)
    if validation is None and "calibrated" in (settings.default_threshold, settings.score):
        raise ValueError(
            "without validation data give a numeric default threshold and a score name "
            "(--default-threshold, --score), or calibrate with --val-data"
        )
    for given in (d for d in (validation, gate_data) if isinstance(d, PairLogits)):
        if given.student.shape[1] != teacher.num_classes:
            raise ValueError(
                f"the logits have {given.student.shape[1]} classes, the pair {teacher.num_classes}"
            )
        if len(given.middle) != len(middle):
            raise ValueError(
                f"the logits hold {len(given.middle)} middle stages, the cascade {len(middle)}"
            )
    if isinstance(validation, PairLogits) and specialized and validation.specialized is None:
        raise ValueError("the validation logits lack specialized_logits for the specialized one")
    if middle and policy != DEFAULT_MODE:
        raise ValueError(f"policy {policy!r} is for two-stage routers; an N-stage one is EBJR")
    batch = settings.stage_batch_size
    middles = tuple(describe(path) for path in middle)
    for info in middles:
        check_pair(info, teacher)
    write_onnx_model(out, STUDENT, student_onnx, student, batch, serving)
    for k, (path, info) in enumerate(zip(middle, middles, strict=True), 1):
        write_onnx_model(out, middle_stage(k), path, info, batch, serving)
    write_onnx_model(out, TEACHER, teacher_onnx, teacher, batch, serving)
    write_router(
        out,
        router_model_config(student, teacher, settings, middle=middles, policy=policy),
        ROUTER_SPEC,
    )
    if specialized is not None:
        special = describe(specialized.onnx)
        check_specialized(special, teacher, specialized)
        write_onnx_model(out, SPECIALIZED_STUDENT, specialized.onnx, special, batch, serving)
        write_router(out, router_model_config(special, teacher, settings, specialized), ROUTER_SPEC)
    if gates and (gate_data is not None or len(gates) != len(middle) + 1):
        raise ValueError("give one gate per stage boundary, or gate-training data, not both")
    for k, gate in enumerate(gates):
        shutil.copyfile(gate, gate_path(out, ROUTER, k))
    if gate_data is not None:
        from ebjr.tasks.classification.gate_training import fit_gate  # Torch, for training only

        for k, stage in enumerate((STUDENT, *(middle_stage(k) for k in range(1, len(middle) + 1)))):
            pair = (
                gate_data.stage(k)
                if isinstance(gate_data, PairLogits)
                else run_pair(out, stage, *gate_data)
            )
            fit_gate(out, pair, boundary=k)
    if validation is None:
        return None
    if middle:
        record = calibrate_cascade_router(
            out, validation, len(middle), pinned_score, settings.temperature
        )
    else:
        record = calibrate_router(out, validation, pinned_score, settings.temperature)
    if specialized is not None:
        calibrate_router(out, validation, pinned_score, settings.temperature, specialized)
    return record


def write_bytes_entry(out: Path) -> None:
    """``out/{image_decoder,teacher_bytes}``: ``out``'s Teacher behind a decoder of PNG or
    JPEG bytes (``ebjr.serving.decoder``), as an ensemble taking ``image_bytes``."""
    teacher = describe(onnx_path(out, TEACHER))
    batch = mc.read(config_path(out, TEACHER)).max_batch_size
    write_model_py(out, DECODER, "ebjr.serving.decoder")
    mc.write(config_path(out, DECODER), mc.image_decoder(DECODER, teacher.input, batch))
    (out / TEACHER_BYTES / VERSION).mkdir(parents=True, exist_ok=True)  # ensembles need one
    ensemble = mc.decoded_ensemble(TEACHER_BYTES, DECODER, TEACHER, teacher, batch)
    mc.write(config_path(out, TEACHER_BYTES), ensemble)


def split_teacher(out: Path, teacher_out: Path, url: str) -> None:
    """The edge/cloud layout: move ``out``'s Teacher to a repository of its own,
    ``teacher_out``, for another Triton server (with ``write_bytes_entry``'s ensemble for
    clients that send encoded images), and point ``out``'s routers at it over gRPC at ``url``
    (``host:port``)."""
    check_url(url)
    (Path(teacher_out) / TEACHER).parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(Path(teacher_out) / TEACHER, ignore_errors=True)
    shutil.move(str(Path(out) / TEACHER), str(Path(teacher_out) / TEACHER))
    write_bytes_entry(Path(teacher_out))
    for router in (ROUTER, SPECIALIZED_ROUTER):
        if config_path(out, router).exists():
            config = mc.read(config_path(out, router))
            mc.write(config_path(out, router), mc.edited(config, {"teacher_url": url}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write an EBJR Triton model repository.")
    parser.add_argument("--student", type=Path, required=True, help="Student ONNX file")
    parser.add_argument(
        "--middle",
        type=Path,
        nargs="+",
        default=[],
        help="larger Students between Student and Teacher, in order: an N-stage cascade",
    )
    parser.add_argument("--teacher", type=Path, required=True, help="Teacher ONNX file")
    parser.add_argument("--out", type=Path, required=True, help="repository folder to write")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=ModelServing.backend,
        help="onnxruntime: Triton's native backend; python: onnxruntime in the "
        "Python backend (no compiler needed)",
    )
    parser.add_argument("--device", choices=DEVICES, default=ModelServing.device)
    parser.add_argument("--tensorrt", action="store_true", help="TensorRT accelerator (GPU)")
    validation = parser.add_mutually_exclusive_group()
    add_labelled_argument(validation, "--val-data", "to calibrate on (validation)")
    validation.add_argument(
        "--val-logits",
        type=Path,
        help="calibrate on the pair's validation logits from your own pipeline instead: an "
        ".npz with student_logits (N, C), teacher_logits (N, C), labels (N,); with --middle "
        "also middle_1_logits (N, C), ...; with --specialized-student specialized_logits",
    )
    gate = parser.add_mutually_exclusive_group()
    add_labelled_argument(
        gate,
        "--gate-data",
        "to train a learned deferral gate on (not the --val-data rows; calibration serves the "
        "gate only where it measures cheaper)",
    )
    gate.add_argument(
        "--gate-logits",
        type=Path,
        help="train the gates on the cascade's logits of other labelled rows (as --val-logits, "
        "without specialized_logits)",
    )
    parser.add_argument(
        "--gates",
        type=Path,
        nargs="+",
        default=[],
        help="gates trained before (ONNX), one per stage boundary, instead of --gate-data",
    )
    parser.add_argument(
        "--remote-teacher",
        metavar="HOST:PORT",
        help="serve the Teacher on another Triton server (gRPC) with --teacher-out",
    )
    parser.add_argument(
        "--teacher-out", type=Path, help="the Teacher server's repository (with --remote-teacher)"
    )
    parser.add_argument(
        "--policy",
        choices=sorted(POLICIES),
        default=DEFAULT_MODE,
        help="the general router's routing policy (random: a baseline that ignores the score)",
    )
    parser.add_argument("--score", help="pin the routing score instead of choosing by measurement")
    parser.add_argument("--temperature", type=float, default=1.0, help="energy temperature T")
    parser.add_argument("--default-threshold", help="numeric default (required without --val-data)")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=RouterSettings.stage_batch_size,
        help="each model's max_batch_size (the router takes in up to its admission window)",
    )
    add_deadline_argument(parser)
    parser.add_argument(
        "--specialized-student", type=Path, help="also serve a top-C + 'other' Student"
    )
    parser.add_argument("--popular", help="its classes as Teacher labels, e.g. 0,1,2")
    parser.add_argument(
        "--share", type=float, default=0.75, help="popular share of the stream it is calibrated on"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if bool(args.specialized_student) != bool(args.popular):
        parser.error("--specialized-student and --popular go together")
    if bool(args.remote_teacher) != bool(args.teacher_out):
        parser.error("--remote-teacher and --teacher-out go together")
    specialized = (
        Specialized(
            args.specialized_student, tuple(int(c) for c in args.popular.split(",")), args.share
        )
        if args.specialized_student
        else None
    )
    settings = RouterSettings(
        default_threshold=args.default_threshold or "calibrated",
        score="calibrated" if args.val_data or args.val_logits else (args.score or "energy"),
        temperature=args.temperature,
        stage_batch_size=args.max_batch_size,
        teacher_timeout_ms=args.teacher_timeout_ms,
    )
    try:
        classes = describe(args.teacher).num_classes
        # an image folder decodes as the router will serve encoded images: at its input's size
        stages = (args.student, *args.middle, args.teacher)
        preprocessing = Preprocessing.for_shape(
            router_input(tuple(describe(path) for path in stages)).shape
        )

        def labelled(logits: Path | None, data: str | None, outputs: int = 0):
            """A logits file's logits (a specialized Student's of ``outputs`` too), else
            labelled images, else None."""
            if logits:
                return load_logits(logits, classes, len(args.middle), outputs)
            return load_labelled(data, preprocessing) if data else None

        validation = labelled(
            args.val_logits, args.val_data, len(specialized.popular) + 1 if specialized else 0
        )
        gate_data = labelled(args.gate_logits, args.gate_data)  # the general router's gates
        if gate_data is not None and (args.gate_data or args.gate_logits) in (
            args.val_data,
            args.val_logits,
        ):
            raise ValueError("the gate must not train on the calibration data (--val-*)")
        record = build_repository(
            args.student,
            args.teacher,
            args.out,
            settings,
            ModelServing(args.backend, args.device, args.tensorrt),
            validation,
            args.score,
            specialized,
            gate_data,
            tuple(args.middle),
            tuple(args.gates),
            args.policy,
        )
        if args.remote_teacher:
            split_teacher(args.out, args.teacher_out, args.remote_teacher)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    names = [STUDENT, *(middle_stage(k) for k in range(1, len(args.middle) + 1)), TEACHER, ROUTER]
    names += [SPECIALIZED_STUDENT, SPECIALIZED_ROUTER] if specialized else []
    if args.remote_teacher:
        names.remove(TEACHER)
        print(
            f"Wrote {args.teacher_out}/{{{TEACHER},{DECODER},{TEACHER_BYTES}}}: serve it, gRPC "
            f"at {args.remote_teacher}"
        )
    print(f"Wrote {args.out}/{{{','.join(names)}}}")
    if record:
        print(
            f"Calibrated on {record.rows} rows: scores {', '.join(record.scores)}, default "
            f"(parity) thresholds {record.parity_thresholds} send "
            f"{record.parity_teacher_fraction:.1%} to the Teacher"
        )


if __name__ == "__main__":
    main()
