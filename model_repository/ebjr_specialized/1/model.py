from ebjr.serving.router import TritonPythonModel  # noqa: F401
