import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        error = pb_utils.TritonError("injected Teacher failure")
        return [pb_utils.InferenceResponse(error=error) for _ in requests]
