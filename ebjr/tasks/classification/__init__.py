"""Classification (paper eqs. 3-7 and 15-18): the default Fashion-MNIST pair, the learned gate,
the specialized Student, the builder for any ONNX classifier pair, and the evaluation."""
