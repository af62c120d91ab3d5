"""The learned deferral gate: training, export, and its place among the routing scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from onnx_factory import builder_args, tiny_classifier

from ebjr.core.gate import GateScore, routing_score
from ebjr.core.scores import ScoreContext
from ebjr.tasks.classification.gate_training import export_gate, train_gate
from ebjr.tasks.classification.repository import main as build


def synthetic(n: int = 4000, classes: int = 5, seed: int = 0):
    """Student logits whose low-margin rows are wrong; the Teacher is always right."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    top2 = np.sort(logits, axis=1)[:, -2:]
    wrong = (top2[:, 1] - top2[:, 0]) < 0.4
    predicted = logits.argmax(1)
    labels = np.where(wrong, (predicted + 1) % classes, predicted)
    return logits, np.eye(classes, dtype=np.float32)[labels] * 10, labels, wrong


def test_the_gate_learns_which_rows_to_defer_and_exports_exactly(tmp_path):
    logits, teacher, labels, wrong = synthetic()
    net = train_gate(logits, teacher, labels)
    gate = GateScore(export_gate(net, logits.shape[1], tmp_path / "gate.onnx"))
    scores = gate(logits)
    assert scores.shape == (len(logits),) and scores.dtype == np.float32
    with torch.no_grad():
        np.testing.assert_allclose(scores, net(torch.from_numpy(logits))[:, 0], atol=1e-5)
    # Higher = keep on the Student: the rows it gets wrong score lower (AUC, rank-based).
    ranks = scores.argsort().argsort()
    auc = (ranks[~wrong].mean() - ranks[wrong].mean()) / len(scores) + 0.5
    assert auc > 0.9, auc


def test_gate_training_is_reproducible():
    logits, teacher, labels, _ = synthetic(n=1000)
    a, b = (train_gate(logits, teacher, labels, epochs=2) for _ in range(2))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_the_gate_score_needs_its_file(tmp_path):
    with pytest.raises(ValueError, match="needs a gate.onnx"):
        routing_score("gate", ScoreContext(1.0, tmp_path))
    assert routing_score("entropy", ScoreContext(1.0, None))(np.zeros((2, 3))).shape == (2,)


def test_the_builder_trains_a_gate_and_calibration_weighs_it(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("val", 300), ("gate", 600)):
        images = rng.random((n, 1, 4, 4), dtype=np.float32)
        np.savez(tmp_path / f"{name}.npz", images=images, labels=rng.integers(0, 5, n))
    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5, side=4)
    out = tmp_path / "repo"
    args = builder_args(student, teacher, out, tmp_path / "val.npz")
    build([*args, "--gate-data", str(tmp_path / "gate.npz")])
    assert (out / "ebjr_router" / "gate.onnx").exists()
    record = json.loads((out / "ebjr_router" / "calibration.json").read_text())
    assert "gate" in record["evidence"]
    build(args)  # rebuilt without gate data: no stale gate is left to be served
    assert not (out / "ebjr_router" / "gate.onnx").exists()
    with pytest.raises(SystemExit):
        build([*args, "--gate-data", str(tmp_path / "val.npz")])
