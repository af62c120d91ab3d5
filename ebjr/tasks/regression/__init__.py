"""Regression (paper eqs. 8-11): rotated Fashion-MNIST, the energy-based angle regressors, their
routing energies, the repository builder and the evaluation."""

from ebjr.core.layout import PROJECT_ROOT
from ebjr.core.router_spec import Column, RouterSpec

# the regressor router's models in a repository
REGRESSOR_ROUTER = "ebjr_regressor"
REGRESSOR_STUDENT, REGRESSOR_TEACHER = "regressor_student", "regressor_teacher"
# the regressors ``make models`` trains (``ebjr.tasks.regression.train``), with their metrics
REGRESSION_MODELS = PROJECT_ROOT / "regression_models"
# the regressor router: the answering model's prediction (N, 1), degrees
ROUTER_SPEC = RouterSpec("ebjr.serving.regressor", (Column("prediction", "TYPE_FP32"),))
