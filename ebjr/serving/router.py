"""The EBJR router: one Student call per dynamic batch, one Teacher call for the rows below
their request's threshold, answers scattered back in order (paper eqs. 6-7).

Per-request parameter ``threshold`` (number or numeric string; ``inf``/``-inf``), or a
calibrated knob ``teacher_fraction`` / ``min_accuracy`` (resolved through ``calibration.json``
next to the router), else the ``default_threshold`` of ``config.pbtxt`` (``calibrated`` takes
the calibration file's). A bad request gets its own INVALID_ARG error; a Teacher failure
follows ``on_teacher_error`` (``fallback``: the Student's answer, marked ``student_fallback``;
``fail``: an error for the requests that needed the Teacher). Nothing escapes ``execute``, so
one bad request never fails its batch-mates.

With ``mode: specialized`` in ``config.pbtxt`` the Student is a top-C + "other" model
(paper eqs. 16-18, ``ebjr.routing.decide``) and its answers are mapped to the Teacher's labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from ebjr.calibration import CALIBRATION_FILE, Calibration, resolve_threshold
from ebjr.layout import onnx_path
from ebjr.onnx_runner import OnnxClassifier
from ebjr.router_config import RouterConfig
from ebjr.routing import FALLBACK, ROUTE_NAMES, RequestError, check_batch, decide, join_answers
from ebjr.serving.metrics import NoMetrics, RouterMetrics
from ebjr.serving.triton import ModelCallError, call_model, error_response, model_parameters

ROUTE_BYTES = np.array([name.encode() for name in ROUTE_NAMES], dtype=np.object_)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        path = Path(args["model_repository"]) / CALIBRATION_FILE
        self.calibration = Calibration.load(path) if path.exists() else None
        self.config = RouterConfig.from_parameters(model_parameters(args), self.calibration)
        outputs = json.loads(args["model_config"])["output"]
        self.num_classes = next(o for o in outputs if o["name"] == "logits")["dims"][-1]
        self.student_local = None
        if self.config.student_in_process:
            repository = Path(args["model_repository"]).parent
            self.student_local = OnnxClassifier(onnx_path(repository, self.config.student[0]))
        self.metrics = (
            RouterMetrics(args["model_name"], self._score_buckets())
            if self.config.metrics
            else NoMetrics()
        )

    def _score_buckets(self) -> list[float]:
        """Histogram buckets at the calibrated scores' deciles, else a wide fixed range."""
        if self.calibration is None:
            return np.linspace(-10, 40, 26).tolist()
        finite = self.calibration.thresholds[np.isfinite(self.calibration.thresholds)]
        return np.unique(np.quantile(finite, np.linspace(0, 1, 11)).round(3)).tolist()

    def finalize(self) -> None:
        self.metrics.close()

    def _run_student(self, batch: np.ndarray) -> np.ndarray:
        """The Student's logits: in this process, or over BLS (``student_execution``)."""
        if self.student_local is None:
            return call_model(*self.config.student, batch)
        try:
            return self.student_local(batch)
        except Exception as err:  # onnxruntime's errors are plain Exceptions
            raise ModelCallError(f"{self.config.student[0]} (in process) failed: {err}") from err

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        try:
            self._route(requests, responses)
        except Exception as err:  # never let one failure hang or fail the whole batch silently
            for i, response in enumerate(responses):
                if response is None:
                    responses[i] = error_response(f"router failed: {err}")
        self.metrics.record_responses(responses)
        return responses

    def _route(self, requests: list, responses: list) -> None:
        accepted, images, thresholds = [], [], []
        for i, request in enumerate(requests):
            try:
                batch = pb_utils.get_input_tensor_by_name(request, "image").as_numpy()
                check_batch(batch)
                threshold = resolve_threshold(
                    request.parameters(), self.config.default_threshold, self.calibration
                )
            except RequestError as err:
                responses[i] = error_response(str(err), invalid_argument=True)
                continue
            accepted.append(i)
            images.append(batch)
            thresholds.append(threshold)
        if not accepted:
            return
        counts = np.array([len(b) for b in images])
        batch = np.concatenate(images)
        row_thresholds = np.repeat(np.array(thresholds, dtype=np.float32), counts)

        try:
            student_logits = self._run_student(batch)
        except ModelCallError as err:
            for i in accepted:
                responses[i] = error_response(str(err))
            return
        scores, student_rows, student_answers = decide(
            student_logits, row_thresholds, self.config.score, self.config.specialized,
            self.num_classes,
        )  # fmt: skip
        teacher_logits, teacher_error = None, None
        if not student_rows.all():
            try:
                teacher_logits = call_model(
                    *self.config.teacher,
                    batch[~student_rows],
                    timeout_s=self.config.teacher_timeout_s,
                )
            except ModelCallError as err:
                teacher_error = str(err)
                self.metrics.record_teacher_failure()
        routed = join_answers(student_answers, scores, student_rows, teacher_logits)

        columns = {  # every output for the whole batch; each request gets its rows
            "logits": routed.logits,
            "class": routed.predictions[:, None],
            "score": routed.scores[:, None],
            "threshold": row_thresholds[:, None],
            "route": ROUTE_BYTES[routed.route][:, None],
        }
        answered = np.ones(len(batch), dtype=bool)
        starts = np.concatenate([[0], np.cumsum(counts)])
        for i, start, stop in zip(accepted, starts[:-1], starts[1:], strict=True):
            rows = slice(start, stop)
            if (
                teacher_error
                and self.config.on_teacher_error == "fail"
                and (routed.route[rows] == FALLBACK).any()
            ):
                responses[i] = error_response(teacher_error)
                answered[rows] = False
                continue
            # Only what the client asked for (every output tensor costs shared-memory work),
            # in the documented order.
            wanted = set(requests[i].requested_output_names() or columns)
            responses[i] = pb_utils.InferenceResponse(
                [pb_utils.Tensor(name, columns[name][rows]) for name in columns if name in wanted]
            )
        self.metrics.record_rows(routed.route[answered], routed.scores[answered])
