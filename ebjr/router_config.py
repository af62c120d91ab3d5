"""The router's settings: written by the builder into its ``config.pbtxt`` parameters
(``RouterSettings``) and read back by the router (``RouterConfig``). One set of defaults,
``RouterSettings``'s, applies to a parameter missing from a config (pure, testable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ebjr.calibration import CalibrationRecord
from ebjr.gate import routing_score
from ebjr.policy import GeneralPolicy, RoutingPolicy, SpecializedPolicy
from ebjr.routing import parse_threshold
from ebjr.scores import ScoreFn

ModelRef = tuple[str, str, str]  # (model name, input name, output name)
STUDENT_EXECUTION = ("in_process", "bls")
ON_TEACHER_ERROR = ("fallback", "fail")


@dataclass(frozen=True)
class RouterSettings:
    """Router knobs. The routing ones are written as ``config.pbtxt`` parameters; the last
    three shape the router's own model config."""

    default_threshold: str = "calibrated"  # or a number
    score: str = "calibrated"  # or energy, softmax, entropy, energy_of_softmax
    temperature: float = 1.0
    # "in_process": the router runs the Student's ONNX file itself, one batch per execution
    # (measured cheaper: TUNING.md); "bls": it calls the Student model over BLS.
    student_execution: str = "in_process"
    metrics: str = "on"  # the router's custom Prometheus metrics ("off" to skip their cost)
    on_teacher_error: str = "fallback"  # or "fail"
    teacher_timeout_ms: int = 0  # 0 = no timeout
    max_batch_size: int = 64
    max_queue_delay_us: int = 0  # batch what is already queued; never wait for more
    instances: int = 2  # two overlap the Teacher wait; measured in TUNING.md

    def __post_init__(self) -> None:
        if self.on_teacher_error not in ON_TEACHER_ERROR:
            raise ValueError(
                f"on_teacher_error must be fallback or fail, not {self.on_teacher_error!r}"
            )
        if self.student_execution not in STUDENT_EXECUTION:
            raise ValueError(
                f"student_execution must be in_process or bls, not {self.student_execution!r}"
            )

    def parameters(self) -> dict[str, str]:
        """The routing knobs as ``config.pbtxt`` parameters."""
        shaping = ("max_batch_size", "max_queue_delay_us", "instances")
        return {k: str(v) for k, v in asdict(self).items() if k not in shaping}

    @classmethod
    def from_parameters(cls, p: dict[str, str]) -> RouterSettings:
        """Settings from ``config.pbtxt`` parameters; a missing key keeps its default."""
        defaults, values = cls(), {}
        for key in defaults.parameters():
            if key in p:
                kind = type(getattr(defaults, key))
                try:
                    values[key] = kind(p[key])
                except ValueError:
                    raise ValueError(f"{key} must be a {kind.__name__}, not {p[key]!r}") from None
        return cls(**values)


@dataclass(frozen=True)
class RouterConfig:
    student: ModelRef
    teacher: ModelRef
    default_threshold: float
    policy: RoutingPolicy
    on_teacher_error: str  # "fallback" or "fail"
    teacher_timeout_s: float  # 0 = no timeout
    student_in_process: bool
    metrics: bool

    @classmethod
    def from_parameters(
        cls,
        p: dict[str, str],
        calibration: CalibrationRecord | None,
        num_classes: int,
        model_dir: Path | None = None,
    ) -> RouterConfig:
        """Settings from ``parameters``; ``calibrated`` values come from ``calibration``.
        ``num_classes`` is the Teacher's (the router's ``logits`` output); ``model_dir`` is the
        router's folder, where a learned gate (score ``gate``) lives.

        Raises ``ValueError`` with the offending key for any bad or inconsistent value.
        """
        s = RouterSettings.from_parameters(p)
        if "calibrated" in (s.default_threshold, s.score) and calibration is None:
            raise ValueError(
                "config.pbtxt asks for calibrated settings but calibration.json is missing"
            )
        if s.default_threshold == "calibrated":
            default = calibration.parity_threshold
        else:
            default = parse_threshold(s.default_threshold, "default_threshold")
        if s.score == "calibrated":
            score = routing_score(calibration.score, calibration.temperature, model_dir)
        else:
            score = routing_score(s.score, s.temperature, model_dir)
        return cls(
            student=(p["student_model"], p["student_input"], p["student_output"]),
            teacher=(p["teacher_model"], p["teacher_input"], p["teacher_output"]),
            default_threshold=default,
            policy=policy_from_parameters(p, score, num_classes),
            on_teacher_error=s.on_teacher_error,
            teacher_timeout_s=s.teacher_timeout_ms / 1000,
            student_in_process=s.student_execution == "in_process",
            metrics=s.metrics != "off",
        )


def policy_parameters(policy: RoutingPolicy) -> dict[str, str]:
    """The ``config.pbtxt`` parameters that name ``policy`` (its score is set apart)."""
    if isinstance(policy, SpecializedPolicy):
        return {
            "mode": "specialized",
            "student_classes": ",".join(map(str, policy.classes)),
            "other_index": str(policy.other_index),
        }
    return {}


def policy_from_parameters(p: dict[str, str], score: ScoreFn, num_classes: int) -> RoutingPolicy:
    """The policy ``policy_parameters`` wrote (general EBJR when ``mode`` is absent)."""
    mode = p.get("mode", "general")
    if mode == "general":
        return GeneralPolicy(score)
    if mode != "specialized":
        raise ValueError(f"mode must be general or specialized, not {mode!r}")
    classes = tuple(int(c) for c in p["student_classes"].split(","))
    return SpecializedPolicy(score, classes, int(p["other_index"]), num_classes)
