"""Detection (paper eqs. 12-14): synthetic scenes, the detector pair, the detection energy as a
routing score, calibration in mAP, the repository builder and the evaluation."""

from ebjr.core.layout import PROJECT_ROOT
from ebjr.core.router_spec import Column, RouterSpec

# the detector router's models in a repository
DETECTOR_ROUTER = "ebjr_detector"
DETECTOR_STUDENT, DETECTOR_TEACHER = "detector_student", "detector_teacher"
# the detectors ``make models`` trains (``ebjr.tasks.detection.train``), with their metrics
DETECTION_MODELS = PROJECT_ROOT / "detection_models"
# the detector router: the answering detector's boxes (N, K, 4), classes (N, K), box scores
# (N, K) and valid mask (N, K)
ROUTER_SPEC = RouterSpec(
    "ebjr.serving.detector",
    (
        Column("boxes", "TYPE_FP32"),
        Column("classes", "TYPE_INT64"),
        Column("scores", "TYPE_FP32"),
        Column("valid", "TYPE_BOOL"),
    ),
)
