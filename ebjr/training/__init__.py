"""What every task trains with (Torch; never imported while serving): the Fashion-MNIST splits,
the architectures, the shared training loop with its checkpoints, and the checked ONNX export."""
