from ebjr.serving.regressor import TritonPythonModel  # noqa: F401
