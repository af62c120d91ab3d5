"""The EBJR regressor router (paper eqs. 8-11): a packed router (``ebjr.serving.packed``)
over a Student and a Teacher regressor with energy-based outputs.

The Student runs once per dynamic batch; each image's score is its negative free energy
``-F^r(x)`` (``ebjr.tasks.regression.scores``: the binned head's exact integral, or the pair head's
importance-sampling estimate); the images below their request's threshold go to the Teacher in
one BLS call. Every image gets the answering model's ``prediction`` (degrees; each model in
its own prediction form, the ``prediction`` parameter), plus ``score``,
``threshold`` and ``route``. The knobs are ``threshold``, ``teacher_fraction`` and
``max_error`` (the expected mean absolute error on validation, degrees).
"""

from __future__ import annotations

import numpy as np

from ebjr.build.router_config import RouterConfig
from ebjr.core.routing import TEACHER, Routed
from ebjr.serving.packed import PackedRouter
from ebjr.serving.router import routing_columns
from ebjr.tasks.regression import ROUTER_SPEC
from ebjr.tasks.regression.scores import PREDICTIONS, SCORE_FACTORIES, EnergyHead, predict


class TritonPythonModel(PackedRouter):
    spec, scores = ROUTER_SPEC, SCORE_FACTORIES

    def _read_config(self, args: dict, parameters: dict[str, str]) -> RouterConfig:
        self.head = EnergyHead.from_parameters(parameters)
        # the Student's and the Teacher's prediction forms, "student_form,teacher_form"
        self.predictions = parameters.get("prediction", "").split(",")
        if len(self.predictions) != 2 or not set(self.predictions) <= set(PREDICTIONS):
            raise ValueError(
                f"prediction needs two forms from {PREDICTIONS}, not {self.predictions}"
            )
        return super()._read_config(args, parameters)

    def _columns(self, routed: Routed, thresholds: np.ndarray) -> dict[str, np.ndarray]:
        found = self.layout.unpack(routed.logits)
        student, teacher = (predict(form, found, self.head) for form in self.predictions)
        return {
            "prediction": np.where(routed.route == TEACHER, teacher, student)[:, None],
            **routing_columns(routed, thresholds),
        }
