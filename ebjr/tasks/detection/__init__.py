"""Detection (paper eqs. 12-14): synthetic scenes, the detector pair, the detection energy as a
routing score, calibration in mAP, the repository builder and the evaluation."""

from ebjr.core.layout import PROJECT_ROOT

# the detector router's models in a repository
DETECTOR_ROUTER = "ebjr_detector"
DETECTOR_STUDENT, DETECTOR_TEACHER = "detector_student", "detector_teacher"
# the detectors ``make models`` trains (``ebjr.tasks.detection.train``), with their metrics
DETECTION_MODELS = PROJECT_ROOT / "detection_models"
