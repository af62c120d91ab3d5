"""Each task declares its router once (``ROUTER_SPEC``): the builder's ``config.pbtxt``
outputs and ``1/model.py`` and the served response's columns all come from it."""

from __future__ import annotations

import numpy as np
import pytest

from ebjr.build import model_config as mc
from ebjr.build.repository import write_router
from ebjr.core.layout import DEFAULT_REPOSITORY, VERSION, config_path
from ebjr.core.router_spec import ROUTING, Column, RouterSpec
from ebjr.tasks import classification, detection, regression

SPECS = {
    "ebjr_router": classification.ROUTER_SPEC,
    "ebjr_specialized": classification.ROUTER_SPEC,
    detection.DETECTOR_ROUTER: detection.ROUTER_SPEC,
    regression.REGRESSOR_ROUTER: regression.ROUTER_SPEC,
}


@pytest.mark.parametrize("router", sorted(SPECS))
def test_the_committed_routers_are_what_their_task_declares(router):
    spec = SPECS[router]
    config = mc.read(config_path(DEFAULT_REPOSITORY, router))
    assert tuple(o.name for o in config.output) == spec.outputs
    dtypes = {o.name: mc.pb.DataType.Name(o.data_type) for o in config.output}
    assert [dtypes[c.name] for c in spec.answers] == [c.triton_dtype for c in spec.answers]
    model_py = (DEFAULT_REPOSITORY / router / VERSION / "model.py").read_text()
    assert f"from {spec.serving_module} import TritonPythonModel" in model_py


def test_a_spec_orders_a_response_and_refuses_a_column_it_does_not_declare():
    spec = RouterSpec("my.serving", (Column("mask", "TYPE_BOOL"),))
    assert spec.outputs == ("mask", *(c.name for c in ROUTING))
    columns = {name: np.zeros((2, 1)) for name in reversed(spec.outputs)}
    assert [name for name, _ in spec.ordered(columns)] == list(spec.outputs)
    with pytest.raises(ValueError, match="not"):
        spec.ordered({**columns, "extra": np.zeros((2, 1))})
    tensors = spec.tensors({"mask": (4,)}, boundaries=2)
    assert [(t.name, t.shape, t.triton_dtype) for t in tensors] == [
        ("mask", (4,), "TYPE_BOOL"),
        ("score", (1,), "TYPE_FP32"),
        ("threshold", (2,), "TYPE_FP32"),
        ("route", (1,), "TYPE_STRING"),
    ]
    with pytest.raises(ValueError, match="answers are"):
        spec.tensors({"boxes": (4,)})


def test_the_builder_refuses_a_router_config_its_spec_does_not_describe(tmp_path):
    config = mc.read(config_path(DEFAULT_REPOSITORY, detection.DETECTOR_ROUTER))
    with pytest.raises(ValueError, match="are not its spec's"):
        write_router(tmp_path, config, regression.ROUTER_SPEC)
    write_router(tmp_path, config, detection.ROUTER_SPEC)
    model_py = (tmp_path / config.name / VERSION / "model.py").read_text()
    assert "ebjr.serving.detector" in model_py
