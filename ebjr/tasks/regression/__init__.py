"""Regression (paper eqs. 8-11): rotated Fashion-MNIST, the energy-based angle regressors, their
routing energies, the repository builder and the evaluation."""
