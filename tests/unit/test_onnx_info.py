import numpy as np
import pytest
from onnx_factory import tiny_classifier, tiny_flops

from ebjr.build.onnx_info import describe
from ebjr.core.onnx_runner import OnnxClassifier


def test_describe_reads_io_and_counts_flops_by_hand(tmp_path):
    info = describe(tiny_classifier(tmp_path / "m.onnx", classes=5, side=4, input_name="pixels"))
    assert info.input.name == "pixels"
    assert info.input.shape == (1, 4, 4)
    assert info.input.triton_dtype == "TYPE_FP32"
    assert (info.output.name, info.output.shape, info.num_classes) == ("logits", (5,), 5)
    assert info.flops == tiny_flops(5, 4) == 896


def test_onnx_runner_predicts_in_batches(tmp_path):
    model = OnnxClassifier(tiny_classifier(tmp_path / "m.onnx"))
    images = np.random.default_rng(1).random((7, 1, 4, 4), dtype=np.float32)
    np.testing.assert_allclose(model.predict(images, batch_size=3), model(images), rtol=1e-6)


def test_describe_refuses_a_fixed_batch_axis(tmp_path):
    import onnx

    path = tiny_classifier(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 8
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="dynamic leading batch axis"):
        describe(path)
