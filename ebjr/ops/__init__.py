"""Running and calling the server: the ``tritonserver`` launcher and its pid files, the native ONNX
Runtime backend build, Prometheus text, the ``tritonclient`` helpers and the edge client."""
