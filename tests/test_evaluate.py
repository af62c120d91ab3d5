import numpy as np
from onnx_factory import tiny_classifier

from ebjr.evaluate import report
from ebjr.repository import main as build


def test_eval_runs_on_a_users_own_pair_and_npz_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the logits cache goes under ./build
    rng = np.random.default_rng(0)
    for name, n in (("val", 300), ("test", 400)):
        np.savez(tmp_path / f"{name}.npz", images=rng.random((n, 1, 4, 4), dtype=np.float32),
                 labels=rng.integers(0, 5, n))  # fmt: skip
    student = tiny_classifier(tmp_path / "s.onnx", classes=5)
    teacher = tiny_classifier(tmp_path / "t.onnx", classes=5, side=4)
    build(["--student", str(student), "--teacher", str(teacher), "--out", str(tmp_path / "repo"),
           "--val-data", str(tmp_path / "val.npz")])  # fmt: skip
    text = report(tmp_path / "repo", tmp_path / "out", 2.0,
                  str(tmp_path / "val.npz"), str(tmp_path / "test.npz"))  # fmt: skip
    assert "(300 images)" in text and "(400 images)" in text
    for section in ("Table 1", "Routing-score ablation", "oracle", "random"):
        assert section in text
    assert (tmp_path / "out" / "EVALUATION.md").read_text() == text
    assert (tmp_path / "out" / "accuracy_vs_cost.png").stat().st_size > 10_000
