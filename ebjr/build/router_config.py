"""The router's settings: written by the builder into its ``config.pbtxt`` parameters
(``RouterSettings``) and read back by the router (``RouterConfig``). One set of defaults,
``RouterSettings``'s, applies to a parameter missing from a config (pure, testable)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ebjr.core.calibration import Calibration, RiskTable
from ebjr.core.gate import ROUTING_SCORES, routing_score
from ebjr.core.policy import GeneralPolicy, RoutingPolicy, policy_from_parameters
from ebjr.core.remote import TLS, check_url
from ebjr.core.routing import parse_threshold
from ebjr.core.scores import ScoreContext, ScoreFactory

ModelRef = tuple[str, str, str]  # (model name, input name, output name)
EXECUTION = ("in_process", "bls")  # student_execution, teacher_execution
ON_TEACHER_ERROR = ("fallback", "fail")
MEASURED = -1  # teacher_timeout_ms: the builder measures it (ebjr.build.deadline)
UNMEASURED_TIMEOUT_MS = 1000  # the deadline of a config that leaves teacher_timeout_ms at -1
STAGE_SHAPES = "stage_shapes"  # written only where a stage takes another size than the router


@dataclass(frozen=True)
class RouterSettings:
    """Router knobs. The routing ones are written as ``config.pbtxt`` parameters; the last
    three shape the router's own model config."""

    # "calibrated", or a number (comma-separated, one per stage boundary, for N stages)
    default_threshold: str = "calibrated"
    score: str = "calibrated"  # or energy, softmax, entropy, energy_of_softmax, gate (or a list)
    temperature: float = 1.0
    # "in_process": the router runs the Student's ONNX file itself, one batch per execution
    # (measured cheaper: TUNING.md); "bls": it calls the Student model over BLS.
    student_execution: str = "in_process"
    # The same for every later stage served from this repository (middle stages, the local
    # Teacher): "in_process" runs its ONNX file in the router's process (no BLS round trip:
    # BENCHMARKS.md measures both); "bls" calls its model, whatever its backend, within
    # teacher_timeout_ms. A remote Teacher (teacher_url) is always called over gRPC.
    teacher_execution: str = "in_process"
    # Intra-op threads of the in-process stages for an execution that holds one request: the
    # queue held nothing else, so the other cores are likely free (c=1 latency). Busier
    # executions run on one thread each, the two instances side by side. 1 = always one
    lone_request_threads: int = 2
    metrics: str = "on"  # the router's custom Prometheus metrics ("off" to skip their cost)
    on_teacher_error: str = "fallback"  # or "fail"
    # How long the router waits for each later stage (local or remote), in ms; 0 = no deadline.
    # MEASURED: the builder writes 4x the Teacher's slowest call on a full batch (at least
    # 100 ms; ebjr.build.deadline); a served config still at -1 waits UNMEASURED_TIMEOUT_MS.
    teacher_timeout_ms: int = MEASURED
    # The circuit breaker of each later stage (ebjr.core.breaker): open after this many
    # consecutive failed or timed-out calls (0 = no breaker), half-open after breaker_open_s
    breaker_failures: int = 3
    breaker_open_s: float = 5.0
    # Teacher capacity guard (ebjr.core.budget): at most this share of rows to the Teacher over the
    # last teacher_budget_window_s seconds, per router instance; 0 = off
    teacher_budget_share: float = 0.0
    teacher_budget_window_s: float = 10.0
    # Load shedding (ebjr.core.budget.LoadShedder): while an execution takes in at least
    # shed_requests requests, refused ones included (a queue has built up; 0 = off), at most
    # shed_teacher_share of its rows go to the Teacher, the rest keep the Student's answer
    # (route student_overload)
    shed_requests: int = 0
    shed_teacher_share: float = 0.05
    # Admission control: one execution serves at most admit_requests requests, the newest, and
    # refuses the older ones at once (HTTP 500 / gRPC INTERNAL, "overloaded"; 0 = serve them
    # all; docs/operations.md says why not 503 / UNAVAILABLE). At its own pace an instance
    # sees a few requests per execution; 16 bounds what an admitted request waits to about
    # two short executions (docs/operations.md: measured against 32)
    admit_requests: int = 16
    # The live audit (ebjr.serving.audit; a two-stage classifier router): this share of the rows
    # the Student keeps at the default thresholds also goes to the Teacher, after the response,
    # and the disagreement of the last audit_window of them is watched (0 = off)
    audit_share: float = 0.0
    audit_window: int = 500
    # teacher_fraction under drift (ebjr.core.tracking; a two-stage router): serve a
    # teacher_fraction request the quantile of the last track_window live routing scores of
    # its instance instead of the validation quantile (0 = off)
    track_window: int = 0
    # A remote Teacher: "host:port" of another Triton server's gRPC endpoint serving
    # teacher_model ("" = the local Teacher over BLS); TLS with teacher_tls "on", optionally
    # with PEM files: a CA bundle, and a client key and certificate chain for mutual TLS
    teacher_url: str = ""
    teacher_tls: str = "off"
    teacher_tls_ca: str = ""
    teacher_tls_key: str = ""
    teacher_tls_cert: str = ""
    # The pair's batch limit: each stage model's max_batch_size, and the most rows the router
    # sends a stage over BLS or gRPC in one call (a larger batch goes in pieces of this size)
    stage_batch_size: int = 64
    # The router's own max_batch_size: the most rows one execution takes from its queue, and
    # so the most a request carries. Wider than the pair's, so that under overload one
    # execution takes in the queue that has built up and admission control refuses all but
    # admit_requests of it at once (OVERLOAD.md measures both widths; 256 served no better).
    # A full request of 28x28 pixels stays about 2 MB as JSON, under this Triton's 4 MB
    # HTTP body crash (docs/operations.md)
    admission_window: int = 128
    max_queue_delay_us: int = 0  # batch what is already queued; never wait for more
    instances: int = 2  # two overlap the Teacher wait; measured in TUNING.md

    def __post_init__(self) -> None:
        if self.on_teacher_error not in ON_TEACHER_ERROR:
            raise ValueError(
                f"on_teacher_error must be fallback or fail, not {self.on_teacher_error!r}"
            )
        if not 0.0 <= self.teacher_budget_share <= 1.0:
            raise ValueError(
                f"teacher_budget_share must be in [0, 1] (0 = off), not {self.teacher_budget_share}"
            )
        if not self.teacher_budget_window_s > 0:
            raise ValueError(
                f"teacher_budget_window_s must be > 0, not {self.teacher_budget_window_s}"
            )
        if self.lone_request_threads < 1:
            raise ValueError(
                f"lone_request_threads must be >= 1 (1 = off), not {self.lone_request_threads}"
            )
        if self.admit_requests < 0:
            raise ValueError(f"admit_requests must be >= 0 (0 = off), not {self.admit_requests}")
        if not 1 <= self.stage_batch_size <= self.admission_window:
            raise ValueError(
                f"need 1 <= stage_batch_size <= admission_window, not {self.stage_batch_size} and "
                f"{self.admission_window}"
            )
        if self.shed_requests < 0:
            raise ValueError(f"shed_requests must be >= 0 (0 = off), not {self.shed_requests}")
        if not 0.0 <= self.shed_teacher_share <= 1.0:
            raise ValueError(f"shed_teacher_share must be in [0, 1], not {self.shed_teacher_share}")
        if not 0.0 <= self.audit_share <= 1.0:
            raise ValueError(f"audit_share must be in [0, 1] (0 = off), not {self.audit_share}")
        if self.audit_window < 1:
            raise ValueError(f"audit_window must be >= 1 row, not {self.audit_window}")
        if self.track_window < 0:
            raise ValueError(f"track_window must be >= 0 rows (0 = off), not {self.track_window}")
        if self.teacher_timeout_ms < MEASURED:
            raise ValueError(
                f"teacher_timeout_ms must be >= 0 (0 = no deadline) or -1 (measured), not "
                f"{self.teacher_timeout_ms}"
            )
        if self.breaker_failures < 0:
            raise ValueError(
                f"breaker_failures must be >= 0 (0 = no breaker), not {self.breaker_failures}"
            )
        if not self.breaker_open_s > 0:
            raise ValueError(f"breaker_open_s must be > 0, not {self.breaker_open_s}")
        if self.teacher_url:
            check_url(self.teacher_url)
        if self.teacher_tls not in ("on", "off"):
            raise ValueError(f"teacher_tls must be on or off, not {self.teacher_tls!r}")
        for key in ("student_execution", "teacher_execution"):
            if getattr(self, key) not in EXECUTION:
                raise ValueError(f"{key} must be in_process or bls, not {getattr(self, key)!r}")

    def parameters(self) -> dict[str, str]:
        """The routing knobs as ``config.pbtxt`` parameters."""
        shaping = ("admission_window", "max_queue_delay_us", "instances")
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
    """What a served router runs on: its ``settings`` as written (every knob there is read from
    them), and what they resolve to."""

    stages: tuple[ModelRef, ...]  # Student first, Teacher last, middle stages between
    policies: tuple[RoutingPolicy, ...]  # one per stage boundary
    default_thresholds: tuple[float, ...]  # one per stage boundary
    settings: RouterSettings
    teacher_timeout_s: float  # for every stage after the Student; 0 = no timeout
    student_in_process: bool
    metrics: bool
    # the later stages served from this repository run in the router's process (else over BLS)
    teacher_in_process: bool = False
    teacher_tls: TLS | None = None
    # Each stage's input row (C, H, W), Student first, where a stage takes another size than
    # the router's image (ebjr.core.resize); None = every stage takes the router's image as is
    stage_shapes: tuple[tuple[int, ...], ...] | None = None

    @property
    def student(self) -> ModelRef:
        return self.stages[0]

    @classmethod
    def from_parameters(
        cls,
        p: dict[str, str],
        calibration: Calibration | None,
        num_classes: int,
        model_dir: Path | None = None,
        registry: dict[str, ScoreFactory] = ROUTING_SCORES,
    ) -> RouterConfig:
        """Settings from ``parameters``; ``calibrated`` values come from ``calibration``.
        ``num_classes`` is the Teacher's (the router's ``logits`` output); ``model_dir`` is the
        router's folder, where learned gates (score ``gate``) live. ``registry`` builds the
        routing scores by name (a served router passes its task's: the classifier's
        ``ROUTING_SCORES``, a detector's or regressor's ``SCORE_FACTORIES``).

        Raises ``ValueError`` with the offending key for any bad or inconsistent value.
        """
        s = RouterSettings.from_parameters(p)
        if calibration is not None:
            check_published(p, calibration)
        stages = (
            (p["student_model"], p["student_input"], p["student_output"]),
            *parse_stages(p.get("middle_stages", "")),
            (p["teacher_model"], p["teacher_input"], p["teacher_output"]),
        )
        boundaries = len(stages) - 1
        shapes = parse_shapes(p[STAGE_SHAPES]) if STAGE_SHAPES in p else None
        if shapes is not None and len(shapes) != len(stages):
            raise ValueError(f"{STAGE_SHAPES} needs one shape per stage ({len(stages)})")
        if s.track_window and boundaries != 1:
            raise ValueError("track_window needs a two-stage router (one threshold to track)")
        if "calibrated" in (s.default_threshold, s.score) and calibration is None:
            raise ValueError(
                "config.pbtxt asks for calibrated settings but calibration.json is missing"
            )
        if s.default_threshold == "calibrated":
            default = calibration.parity_thresholds
        else:
            default = tuple(
                parse_threshold(t, "default_threshold")
                for t in _each(s.default_threshold, boundaries, "default_threshold")
            )
        names = (
            calibration.scores if s.score == "calibrated" else _each(s.score, boundaries, "score")
        )
        if len(default) != boundaries or len(names) != boundaries:
            raise ValueError(
                f"{len(stages)} stages need {boundaries} thresholds and scores; the calibration "
                f"holds {len(calibration.parity_thresholds) if calibration else 0}"
            )
        scores = [
            routing_score(name, ScoreContext(s.temperature, model_dir, k, p), registry)
            for k, name in enumerate(names)
        ]
        first = policy_from_parameters(p, scores[0], num_classes)
        return cls(
            stages=stages,
            policies=(first, *(GeneralPolicy(score) for score in scores[1:])),
            default_thresholds=default,
            settings=s,
            teacher_timeout_s=(
                UNMEASURED_TIMEOUT_MS if s.teacher_timeout_ms == MEASURED else s.teacher_timeout_ms
            )
            / 1000,
            student_in_process=s.student_execution == "in_process",
            teacher_in_process=s.teacher_execution == "in_process",
            metrics=s.metrics != "off",
            teacher_tls=TLS(s.teacher_tls_ca, s.teacher_tls_key, s.teacher_tls_cert)
            if s.teacher_tls == "on"
            else None,
            stage_shapes=shapes,
        )


def _each(value: str, boundaries: int, key: str) -> list[str]:
    """A comma-separated setting, one value per stage boundary (one value applies to all)."""
    values = [v.strip() for v in value.split(",")]
    if len(values) == 1:
        values *= boundaries
    if len(values) != boundaries:
        raise ValueError(f"{key} needs 1 or {boundaries} comma-separated values, not {value!r}")
    return values


def shapes_parameter(shapes: list[tuple[int, ...]]) -> str:
    """The ``stage_shapes`` parameter: one ``CxHxW`` per stage, comma-separated."""
    return ",".join("x".join(str(d) for d in shape) for shape in shapes)


def parse_shapes(value: str) -> tuple[tuple[int, ...], ...]:
    """The shapes ``shapes_parameter`` wrote."""
    try:
        shapes = tuple(tuple(int(d) for d in item.split("x")) for item in value.split(","))
    except ValueError:
        raise ValueError(f"{STAGE_SHAPES} items must be CxHxW, not {value!r}") from None
    if not all(len(shape) == 3 and min(shape) > 0 for shape in shapes):
        raise ValueError(f"{STAGE_SHAPES} items must be CxHxW, not {value!r}")
    return shapes


def stages_parameter(stages: list[ModelRef]) -> str:
    """The ``middle_stages`` parameter: ``model:input:output`` per stage, comma-separated."""
    return ",".join(":".join(stage) for stage in stages)


def parse_stages(value: str) -> list[ModelRef]:
    """The stages ``stages_parameter`` wrote."""
    stages = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        parts = item.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"middle_stages items must be model:input:output, not {item!r}")
        stages.append(tuple(parts))
    return stages


# Parameters the builder adds to a calibrated router's config.pbtxt, so that any client can
# read what its knobs mean from the model config (``/v2/models/<router>/config``); the router
# checks them against its calibration file at load.
PUBLISHED = ("served_score", "served_default_threshold", "operating_points")
CERTIFIED = "certified_points"  # published too where the calibration has a risk table


def published_parameters(calibration: Calibration) -> dict[str, str]:
    """The resolved score per stage boundary, the calibrated default thresholds, and the
    operating points (threshold(s), Teacher share, expected accuracy and FLOPs on the
    calibration split) at every 10% of Teacher share and at parity, as JSON; and the
    ``max_accuracy_drop`` knob's table where the calibration has one (``certified_points``)."""
    table = calibration.table
    thresholds = np.asarray(table.thresholds).reshape(len(table.accuracy), -1)
    rows = {int(np.argmin(np.abs(table.teacher_fraction - f))) for f in np.linspace(0, 1, 11)}
    points = [
        {
            "threshold": ",".join(repr(float(t)) for t in thresholds[i]),
            "teacher_fraction": float(table.teacher_fraction[i]),
            "accuracy": float(table.accuracy[i]),
            "flops": float(table.flops[i]),
        }
        for i in sorted(rows)
    ]
    published = {
        "served_score": ",".join(calibration.scores),
        "served_default_threshold": ",".join(repr(t) for t in calibration.parity_thresholds),
        "operating_points": json.dumps(
            {
                "split": calibration.split,
                "rows": calibration.rows,
                "parity": {
                    "threshold": ",".join(repr(t) for t in calibration.parity_thresholds),
                    "teacher_fraction": calibration.parity_teacher_fraction,
                    "accuracy": calibration.parity_accuracy,
                },
                "points": points,
            }
        ),
    }
    if calibration.risk is not None:
        published[CERTIFIED] = certified_points(calibration.risk)
    return published


def certified_points(risk: RiskTable) -> str:
    """The ``max_accuracy_drop`` knob's table as JSON: for each ``confidence`` (rows) and
    ``max_drop`` (columns), the Teacher share its certified thresholds send on calibration."""
    return json.dumps(
        {
            "loss": "rows lost to the Teacher (bounds the accuracy drop)",
            "procedure": risk.procedure,
            "rows": risk.rows,
            "confidence": risk.confidence.tolist(),
            "max_drop": risk.max_drop.tolist(),
            "teacher_fraction": risk.teacher_fraction.tolist(),
        }
    )


def check_published(p: dict[str, str], calibration: Calibration) -> None:
    """Refuse a config whose published calibration no longer matches the calibration file
    (e.g. ``calibration.json`` replaced by hand): clients would read wrong units."""
    if "served_score" not in p:
        return
    expected = published_parameters(calibration)
    keys = (*PUBLISHED, CERTIFIED)
    stale = [key for key in keys if p.get(key) != expected.get(key)]
    if stale:
        raise ValueError(
            f"config.pbtxt's {', '.join(stale)} disagree with calibration.json; rebuild the "
            "repository (python -m ebjr.tasks.classification.repository) or recalibrate with it"
        )
