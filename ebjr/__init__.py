"""Energy-Based Joint Reasoning (EBJR) on NVIDIA Triton Inference Server.

Pure NumPy logic (scores, routing, calibration, repository building) lives here; the Triton
Python-backend models in ``ebjr.serving`` are thin wrappers around it.
"""

__version__ = "0.1.0"
