"""The routing core, pure NumPy: scores, policies, the cascade, calibration, the learned gate,
packed rows, tensor specs, the router spec, the repository layout, the Teacher budget and
tallies, the circuit breaker, decoding encoded images (Pillow), and the remote-stage client.
It imports no torch, scipy, onnx or dataset code, so a serving process can."""
