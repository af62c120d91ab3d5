"""Energy-Based Joint Reasoning (EBJR) on NVIDIA Triton Inference Server.

Layered subpackages, each importing only those below it: ``core`` (pure NumPy routing) <-
``training`` and ``build`` <- ``tasks`` <- ``serving``, ``ops`` and ``bench``. The Triton
Python-backend models in ``ebjr.serving`` are thin wrappers around ``core`` and the tasks' scores.
"""

__version__ = "0.1.0"
