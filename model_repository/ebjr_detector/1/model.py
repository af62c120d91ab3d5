from ebjr.serving.detector import TritonPythonModel  # noqa: F401
