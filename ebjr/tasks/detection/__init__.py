"""Detection (paper eqs. 12-14): synthetic scenes, the detector pair, the detection energy as a
routing score, calibration in mAP, the repository builder and the evaluation."""
