"""Writing a Triton model repository: ONNX model facts, ``config.pbtxt`` through Triton's protobuf
schema, the router's parameters, and the writer every task's builder shares."""
