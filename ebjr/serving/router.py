"""The EBJR router: one Student call per dynamic batch, one Teacher call for the rows the
Student does not keep, answers scattered back in order (paper eqs. 6-7). An N-stage router
(``middle_stages``) calls each middle stage once, with the rows no earlier stage kept.

Per-request parameter ``threshold`` (number or numeric string; ``inf``/``-inf``), or a
calibrated knob ``teacher_fraction`` / ``min_accuracy`` / ``max_accuracy_drop`` (resolved
through ``calibration.json`` next to the router; ``teacher_fraction`` through the live scores
with ``track_window``, ``ebjr.core.tracking``), else the ``default_threshold`` of
``config.pbtxt`` (``calibrated`` takes the calibration's parity threshold). With
``audit_share``, a sample of the kept rows is audited after the response
(``ebjr.serving.audit``). A bad request gets its own INVALID_ARG error; a Teacher
failure follows ``on_teacher_error`` (``fallback``: the Student's answer, marked
``student_fallback``; ``fail``: an error for the requests that needed the Teacher). Every later
stage is waited for at most ``teacher_timeout_ms``, raised on a slower serving machine from
the stage's answered calls (``ebjr.core.deadline``), and has a circuit breaker
(``ebjr.core.breaker``): once it opens, the rows that need that stage get the same fallback or
error at once, without a call. Nothing escapes ``execute``, so one bad request never fails its
batch-mates. What to route on and how answers map back is the routing policy's
(``ebjr.core.policy``), named by ``config.pbtxt``. A stage whose input is smaller than the
router's image (``stage_shapes``) gets its rows resized to its own size (``ebjr.core.resize``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.build.router_config import ModelRef, RouterConfig
from ebjr.core.audit import Expectation
from ebjr.core.breaker import CLOSED, STATE_NAMES, CircuitBreaker, CircuitOpen
from ebjr.core.budget import LoadShedder, TeacherBudget
from ebjr.core.calibration import read_calibration, resolve_thresholds
from ebjr.core.deadline import StageDeadline
from ebjr.core.gate import ROUTING_SCORES
from ebjr.core.layout import CALIBRATION_FILE, onnx_path
from ebjr.core.onnx_runner import OnnxClassifier
from ebjr.core.preprocess import IMAGE, IMAGE_BYTES, Preprocessing
from ebjr.core.preprocess import PARAMETER as PREPROCESSING
from ebjr.core.ratelimit import RateLimited
from ebjr.core.remote import RemoteModel
from ebjr.core.resize import fit_to
from ebjr.core.routing import (
    BUDGET,
    FALLBACK,
    OVERLOAD,
    ROUTE_NAMES,
    STUDENT,
    RequestError,
    Routed,
    StageError,
    cascade,
    check_batch,
    in_pieces,
    request_slices,
)
from ebjr.core.tracking import ScoreWindow
from ebjr.serving.audit import AuditMetrics, Auditor
from ebjr.serving.metrics import NoMetrics, RouterMetrics
from ebjr.serving.triton import (
    ModelCallError,
    call_model,
    error_response,
    model_parameters,
    refusal_response,
)
from ebjr.tasks.classification import ROUTER_SPEC

ROUTE_BYTES = np.array([name.encode() for name in ROUTE_NAMES], dtype=np.object_)


def routing_columns(routed: Routed, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Every router's last outputs (``ROUTING_OUTPUTS`` of its config) for the whole batch:
    ``score (N, 1)``, ``threshold (N, S - 1)`` and ``route (N, 1)`` as bytes."""
    return {
        "score": routed.scores[:, None],
        "threshold": thresholds,
        "route": ROUTE_BYTES[routed.route][:, None],
    }


class TritonPythonModel:
    spec = ROUTER_SPEC  # the outputs every response carries, in order (its task declares it)
    scores = ROUTING_SCORES  # the routing scores it builds by name (its task's registry)

    def initialize(self, args: dict) -> None:
        self.log = pb_utils.Logger  # Triton's log; it exists only once the stub is running
        self.name = args["model_name"]
        path = Path(args["model_repository"]) / CALIBRATION_FILE
        self.calibration = read_calibration(path) if path.exists() else None
        parameters = model_parameters(args)
        self.config = self._read_config(args, parameters)
        settings = self.config.settings
        self.preprocessing = (  # how image_bytes rows are decoded
            Preprocessing.from_parameter(parameters[PREPROCESSING])
            if PREPROCESSING in parameters
            else None
        )
        repository = Path(args["model_repository"]).parent
        self.local = self._load_local(repository, threads=1)
        wide = settings.lone_request_threads
        self.lone = self._load_local(repository, wide) if wide > 1 else self.local
        self.metrics = (
            RouterMetrics(args["model_name"], self._score_buckets(), len(self.config.stages) - 1)
            if self.config.metrics
            else NoMetrics()
        )
        self.fallback_log = RateLimited(interval_s=10.0)
        self.breaker_log = RateLimited(interval_s=1.0)
        self.breakers = [  # one per later stage
            CircuitBreaker(settings.breaker_failures, settings.breaker_open_s)
            if settings.breaker_failures
            else None
            for _ in self.config.stages[1:]
        ]
        self.metrics.watch_breakers(self.breakers, args["model_instance_name"])
        self.deadlines = [StageDeadline(self.config.teacher_timeout_s) for _ in self.breakers]
        self.remote = (  # one reused gRPC connection per router instance
            RemoteModel(settings.teacher_url, *self.config.stages[-1], self.config.teacher_tls)
            if settings.teacher_url
            else None
        )
        share = settings.teacher_budget_share
        self.budget = TeacherBudget(share, settings.teacher_budget_window_s) if share else None
        self.shedder = (
            LoadShedder(settings.shed_requests, settings.shed_teacher_share)
            if settings.shed_requests
            else None
        )
        self.auditor = self._auditor(args) if settings.audit_share else None
        window = settings.track_window
        self.tracked = ScoreWindow(window) if window else None  # live scores (teacher_fraction)
        self.log.log_info(
            f"{args['model_name']}: {len(self.config.stages)} stages "
            f"{[stage[0] for stage in self.config.stages]}, "
            f"{type(self.config.policies[0]).__name__}, default thresholds "
            f"{self.config.default_thresholds}, Student "
            f"{'in process' if self.local[0] else 'over BLS'}, Teacher "
            f"{self._teacher_route()}"
        )

    def _load_local(
        self, repository: Path, threads: int
    ) -> list[Callable[[np.ndarray], np.ndarray] | None]:
        """Per stage, its ONNX file loaded in this process on ``threads`` intra-op threads
        (``student_execution`` / ``teacher_execution`` ``in_process``), or None for a stage
        called over BLS or gRPC."""
        last = len(self.config.stages) - 1
        local = [
            self.config.student_in_process if k == 0 else self.config.teacher_in_process
            for k in range(len(self.config.stages))
        ]
        local[last] = local[last] and not self.config.settings.teacher_url
        loaded = []
        for k, ((name, _, _), in_process) in enumerate(zip(self.config.stages, local, strict=True)):
            path = onnx_path(repository, name)
            if in_process and not path.exists():
                key = "teacher_execution" if k else "student_execution"
                raise ValueError(
                    f"{key} in_process runs {path}, which does not exist: serve {name} from "
                    f"an ONNX file, or set {key} to bls"
                )
            loaded.append(self._load_model(path, threads) if in_process else None)
        return loaded

    def _teacher_route(self) -> str:
        if self.remote:
            return f"at {self.config.settings.teacher_url} (gRPC)"
        return "in process" if self.local[-1] else "over BLS"

    # What a router of another task (``ebjr.serving.detector``) does differently: how it reads
    # its config, runs its Student in process, calls a stage and builds its outputs.
    def _read_config(self, args: dict, parameters: dict[str, str]) -> RouterConfig:
        logits = pb_utils.get_output_config_by_name(json.loads(args["model_config"]), "logits")
        return RouterConfig.from_parameters(
            parameters,
            self.calibration,
            num_classes=logits["dims"][-1],
            model_dir=Path(args["model_repository"]),
            registry=self.scores,
        )

    def _load_model(self, path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        return OnnxClassifier(path, threads)

    def _call(self, stage: ModelRef, images: np.ndarray, timeout_s: float) -> np.ndarray:
        return call_model(*stage, images, timeout_s=timeout_s)

    def _columns(self, routed: Routed, thresholds: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of ``spec`` for the whole batch; each request gets its rows.
        ``thresholds: (N, S - 1)``."""
        return {
            "logits": routed.logits,
            "class": routed.predictions[:, None],
            **routing_columns(routed, thresholds),
        }

    def _auditor(self, args: dict) -> Auditor:
        """The live audit (``ebjr.serving.audit``) of a two-stage classifier router whose
        calibration measured its kept rows' disagreement; ``ValueError`` otherwise."""
        found = self.calibration.kept_disagreement if self.calibration else None
        if len(self.config.stages) != 2 or found is None:
            raise ValueError(
                "audit_share needs a two-stage classifier router whose calibration.json has "
                "kept_disagreement: rebuild it with ebjr.tasks.classification.repository"
            )
        config = json.loads(args["model_config"])
        logits = pb_utils.get_output_config_by_name(config, "logits")
        return Auditor(
            self.name,
            self.config.settings.audit_share,
            self.config.settings.audit_window,
            Expectation(*found),
            self._audit_call,
            self.config.settings.stage_batch_size,  # the pair's batch limit
            self.log,
            AuditMetrics(self.name, args["model_instance_name"], logits["dims"][-1])
            if self.config.metrics
            else None,
        )

    def _audit_call(self, images: np.ndarray) -> np.ndarray:
        """The Teacher's logits for audited rows, unless its breaker is not closed (a sick
        Teacher is not asked for more)."""
        breaker = self.breakers[-1]
        if breaker is not None and breaker.state != CLOSED:
            raise CircuitOpen(f"{self.config.stages[-1][0]}'s circuit breaker is not closed")
        teacher = len(self.config.stages) - 1
        # off the response path, beside the executions: never the lone_request_threads sessions
        return self._call_stage(teacher, self._stage_input(teacher, images), lone=False)

    def finalize(self) -> None:
        if self.auditor is not None:
            self.auditor.close()
        self.metrics.close()
        if self.remote is not None:
            self.remote.close()

    def _score_buckets(self) -> list[float]:
        """Histogram buckets at the calibrated scores' deciles, else a wide fixed range."""
        if self.calibration is None:
            return np.linspace(-10, 40, 26).tolist()
        thresholds = np.ravel(self.calibration.table.thresholds)  # every boundary's
        finite = thresholds[np.isfinite(thresholds)]
        return np.unique(np.quantile(finite, np.linspace(0, 1, 11)).round(3)).tolist()

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        self._refuse_excess(responses)
        try:
            self._route(requests, responses)
        except Exception as err:  # never let one failure hang or fail the whole batch silently
            self.log.log_error(f"router failed: {err}")
            for i, response in enumerate(responses):
                if response is None:
                    responses[i] = error_response(f"router failed: {err}")
        self.metrics.record_responses(responses)
        return responses

    def _refuse_excess(self, responses: list) -> None:
        """Admission control: an execution answers at most ``admit_requests`` requests, the
        newest (Triton hands them over oldest first); the older ones waited longest, likely
        past any deadline already, and are refused at once."""
        admit = self.config.settings.admit_requests
        excess = len(responses) - admit if admit else 0
        for i in range(max(excess, 0)):
            reason = f"{len(responses)} requests waiting in one batch, at most {admit} served"
            responses[i] = refusal_response(self.name, reason)

    def _images(self, request) -> np.ndarray:
        """The request's rows as the Student's input: its ``image`` pixels, or its
        ``image_bytes`` decoded (``RequestError`` for a bad payload, naming its row)."""
        pixels = pb_utils.get_input_tensor_by_name(request, IMAGE)
        payloads = pb_utils.get_input_tensor_by_name(request, IMAGE_BYTES)
        if (pixels is None) == (payloads is None):
            raise RequestError(f"send one of {IMAGE} (pixels) or {IMAGE_BYTES} (PNG or JPEG)")
        if pixels is not None:
            return pixels.as_numpy()
        if self.preprocessing is None:
            raise RequestError(f"this router's config has no {PREPROCESSING}: send {IMAGE}")
        return self.preprocessing.decode_batch(payloads.as_numpy())

    def _accept(self, requests: list, responses: list) -> tuple[list, list, list]:
        """Each valid request's index, images and threshold; invalid ones get their error
        (refused ones already have their response)."""
        accepted, images, thresholds = [], [], []
        for i, request in enumerate(requests):
            if responses[i] is not None:
                continue
            try:
                batch = self._images(request)
                check_batch(batch)
                threshold = resolve_thresholds(
                    request.parameters(),
                    self.config.default_thresholds,
                    self.calibration,
                    self.tracked,
                )
            except RequestError as err:
                responses[i] = error_response(str(err), invalid_argument=True)
                continue
            accepted.append(i)
            images.append(batch)
            thresholds.append(threshold)
        return accepted, images, thresholds

    def _route(self, requests: list, responses: list) -> None:
        accepted, images, thresholds = self._accept(requests, responses)
        if not accepted:
            return
        counts = [len(b) for b in images]
        batch = np.concatenate(images)
        row_thresholds = np.repeat(np.array(thresholds, dtype=np.float32), counts, axis=0)
        run = partial(self._run_stage, lone=len(requests) == 1)
        try:
            routed, later_error = cascade(
                batch, row_thresholds, self.config.policies, run, self._guards(requests)
            )
        except ModelCallError as err:  # the Student failed: nothing to answer with
            for i in accepted:
                responses[i] = error_response(str(err))
            return
        fallbacks = int((routed.route == FALLBACK).sum())
        if isinstance(later_error, CircuitOpen):
            self.metrics.record_short_circuit(fallbacks)
        elif later_error is not None:
            self._teacher_failed(later_error, fallbacks)

        columns = self.spec.ordered(self._columns(routed, row_thresholds))
        answered = np.ones(len(batch), dtype=bool)
        fail = later_error is not None and self.config.settings.on_teacher_error == "fail"
        for i, rows in zip(accepted, request_slices(counts, len(batch)), strict=True):
            if fail and (routed.route[rows] == FALLBACK).any():
                responses[i] = error_response(str(later_error))
                answered[rows] = False
                continue
            # Only what the client asked for (every output tensor costs shared-memory work),
            # in the documented order.
            wanted = set(requests[i].requested_output_names() or self.spec.outputs)
            responses[i] = pb_utils.InferenceResponse(
                [pb_utils.Tensor(name, column[rows]) for name, column in columns if name in wanted]
            )
        self.metrics.record_rows(routed.route[answered], routed.scores[answered])
        if self.tracked is not None:
            self.tracked.add(routed.scores)
        if self.auditor is not None:  # after the responses are built; it returns at once
            default = (row_thresholds == np.float32(self.config.default_thresholds)).all(axis=1)
            self.auditor.offer(batch, (routed.route == STUDENT) & default, routed.predictions)

    def _guards(self, requests: list) -> list:
        """The capacity guard and the load shedder (``ebjr.core.budget``) for an execution of
        ``requests``: the shedder counts every request it took in, those admission control
        refused included, as the queue that had built up."""
        guards = [] if self.budget is None else [(self.budget.admit, BUDGET)]
        if self.shedder is not None:
            guards.append((self.shedder.guard(len(requests)), OVERLOAD))
        return guards

    def _stage_input(self, stage: int, images: np.ndarray) -> np.ndarray:
        """``images`` as stage ``stage`` takes them: resized to its ``stage_shapes`` entry."""
        shapes = self.config.stage_shapes
        return images if shapes is None else fit_to(images, shapes[stage])

    def _run_stage(self, stage: int, images: np.ndarray, lone: bool) -> np.ndarray:
        """Stage ``stage``'s logits for ``images``: the Student in this process or over BLS
        (``student_execution``), every later stage through its breaker (``_call_later``).
        ``lone``: the execution holds one request (in process: ``lone_request_threads``)."""
        images = self._stage_input(stage, images)
        if stage > 0:
            return self._call_later(stage, images, lone)
        if self.local[0] is None:
            call = partial(self._call, self.config.student, timeout_s=0.0)
            return in_pieces(call, images, self.config.settings.stage_batch_size)
        return self._run_local(0, images, lone)

    def _run_local(self, stage: int, images: np.ndarray, lone: bool) -> np.ndarray:
        try:
            return (self.lone if lone else self.local)[stage](images)
        except Exception as err:  # onnxruntime's errors are plain Exceptions
            name = self.config.stages[stage][0]
            raise ModelCallError(f"{name} (in process) failed: {err}") from err

    def _call_later(self, stage: int, images: np.ndarray, lone: bool) -> np.ndarray:
        """A later stage (``_call_stage``: in this process, over BLS, or the Teacher over gRPC
        when ``teacher_url`` names a remote one), unless its breaker is open: then
        ``CircuitOpen`` at once. Each answer or failure is the breaker's evidence."""
        breaker = self.breakers[stage - 1]
        if breaker is None:
            return self._call_stage(stage, images, lone)
        allowed, change = breaker.allow()
        self._breaker_changed(stage, change)
        if not allowed:
            raise CircuitOpen(
                f"{self.config.stages[stage][0]} is not called: its circuit breaker is open "
                f"after {breaker.failures} failed calls in a row"
            )
        try:
            logits = self._call_stage(stage, images, lone)
        except StageError:
            self._breaker_changed(stage, breaker.failed())
            raise
        self._breaker_changed(stage, breaker.succeeded())
        return logits

    def _call_stage(self, stage: int, images: np.ndarray, lone: bool) -> np.ndarray:
        """Stage ``stage``'s logits: in this process, else in calls of at most
        ``stage_batch_size`` rows (its model's batch limit)."""
        if self.local[stage] is not None:
            self.metrics.record_stage_call(stage, len(images))
            return self._run_local(stage, images, lone)
        call = partial(self._call_served, stage)
        return in_pieces(call, images, self.config.settings.stage_batch_size)

    def _call_served(self, stage: int, images: np.ndarray) -> np.ndarray:
        """One call of stage ``stage`` served by a model, within its deadline (an answered
        call's duration is the deadline's evidence). Each call is counted."""
        self.metrics.record_stage_call(stage, len(images))
        deadline = self.deadlines[stage - 1]
        began = time.perf_counter()
        if self.remote is not None and stage == len(self.config.stages) - 1:
            logits = self.remote(images, deadline.seconds)
        else:
            logits = self._call(self.config.stages[stage], images, deadline.seconds)
        deadline.answered(time.perf_counter() - began)
        return logits

    def _breaker_changed(self, stage: int, state: int | None) -> None:
        """Log a breaker's change of state (at most one message a second)."""
        if state is None:
            return
        held = self.breaker_log.take()
        if held is not None:
            self.log.log_warn(
                f"{self.name}: circuit breaker of {self.config.stages[stage][0]} is now "
                f"{STATE_NAMES[state]} ({held} more changes since the last message)"
            )

    def _teacher_failed(self, cause: str, rows: int) -> None:
        """Count a Teacher failure and log its cause, at most once every 10 s."""
        self.metrics.record_teacher_failure()
        held = self.fallback_log.take()
        if held is not None:
            action = (
                "failing" if self.config.settings.on_teacher_error == "fail" else "falling back for"
            )
            self.log.log_warn(
                f"{self.name}: Teacher call failed, {action} {rows} rows: {cause} "
                f"({held} more failures since the last message)"
            )
