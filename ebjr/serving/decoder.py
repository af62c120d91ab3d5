"""Encoded images to pixels as a model of its own: the first step of a Teacher server's
``teacher_bytes`` ensemble (decoder, then the Teacher), so that a client holding PNG or JPEG
files, such as the edge client, sends those instead of FP32 pixels. Input ``image_bytes`` (one
payload per row, raw or base64), output ``image`` as the ``preprocessing`` parameter says
(``ebjr.core.preprocess``, the router's own decoding); a bad payload is its own request's
INVALID_ARG error, and its batch-mates are answered."""

from __future__ import annotations

import triton_python_backend_utils as pb_utils

from ebjr.core.preprocess import IMAGE, IMAGE_BYTES, Preprocessing
from ebjr.core.preprocess import PARAMETER as PREPROCESSING
from ebjr.core.routing import RequestError
from ebjr.serving.triton import error_response, model_parameters


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.preprocessing = Preprocessing.from_parameter(model_parameters(args)[PREPROCESSING])

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            payloads = pb_utils.get_input_tensor_by_name(request, IMAGE_BYTES).as_numpy()
            try:
                pixels = self.preprocessing.decode_batch(payloads)
            except RequestError as err:
                responses.append(error_response(str(err), invalid_argument=True))
                continue
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(IMAGE, pixels)]))
        return responses
