from ebjr.serving.onnx_model import TritonPythonModel  # noqa: F401
