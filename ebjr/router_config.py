"""The router's settings, read from its ``config.pbtxt`` parameters (pure, testable)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebjr.calibration import Calibration
from ebjr.routing import parse_threshold
from ebjr.scores import ScoreFn, get_score

ModelRef = tuple[str, str, str]  # (model name, input name, output name)


@dataclass(frozen=True)
class RouterConfig:
    student: ModelRef
    teacher: ModelRef
    default_threshold: float
    score: ScoreFn
    on_teacher_error: str  # "fallback" or "fail"
    teacher_timeout_s: float  # 0 = no timeout
    student_in_process: bool
    specialized: tuple[np.ndarray, int] | None  # (Teacher label per Student class, other index)
    metrics: bool = True  # the router's custom Prometheus metrics

    @classmethod
    def from_parameters(cls, p: dict[str, str], calibration: Calibration | None) -> RouterConfig:
        """Settings from ``parameters``; ``calibrated`` values come from ``calibration``.

        Raises ``ValueError`` with the offending key for any bad or inconsistent value.
        """
        if "calibrated" in (p["default_threshold"], p["score"]) and calibration is None:
            raise ValueError(
                "config.pbtxt asks for calibrated settings but calibration.json is missing"
            )
        if p["default_threshold"] == "calibrated":
            default = calibration.default_threshold
        else:
            default = parse_threshold(p["default_threshold"], "default_threshold")
        if p["score"] == "calibrated":
            score = get_score(calibration.score, calibration.temperature)
        else:
            score = get_score(p["score"], float(p.get("temperature", "1.0")))
        on_error = p.get("on_teacher_error", "fallback")
        if on_error not in ("fallback", "fail"):
            raise ValueError(f"on_teacher_error must be fallback or fail, not {on_error!r}")
        execution = p.get("student_execution", "bls")
        if execution not in ("bls", "in_process"):
            raise ValueError(f"student_execution must be bls or in_process, not {execution!r}")
        specialized = None
        if p.get("mode", "general") == "specialized":
            classes = np.array([int(c) for c in p["student_classes"].split(",")])
            specialized = (classes, int(p["other_index"]))
        return cls(
            student=(p["student_model"], p["student_input"], p["student_output"]),
            teacher=(p["teacher_model"], p["teacher_input"], p["teacher_output"]),
            default_threshold=default,
            score=score,
            on_teacher_error=on_error,
            teacher_timeout_s=float(p.get("teacher_timeout_ms", "0")) / 1000,
            student_in_process=execution == "in_process",
            specialized=specialized,
            metrics=p.get("metrics", "on") != "off",
        )
