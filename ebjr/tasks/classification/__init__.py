"""Classification (paper eqs. 3-7 and 15-18): the default Fashion-MNIST pair, the learned gate,
the specialized Student, the builder for any ONNX classifier pair, and the evaluation."""

from ebjr.core.router_spec import Column, RouterSpec

# the classifier routers (two stages, N stages, specialized): the answering model's logits
# (N, C) and class (N, 1)
ROUTER_SPEC = RouterSpec(
    "ebjr.serving.router", (Column("logits", "TYPE_FP32"), Column("class", "TYPE_INT64"))
)
