"""Encoded images in: every router takes ``image_bytes`` (one PNG or JPEG per row, raw or
base64) besides ``image``, decoded server-side as its ``preprocessing`` parameter says
(``ebjr.core.preprocess``). Checked row by row against the same router on the decoded pixels;
bad payloads are a clear 400 / INVALID_ARGUMENT for their own request only."""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import InferenceServerException

from ebjr.core.preprocess import MAX_PIXELS, Preprocessing, encode_png
from ebjr.ops.client import classify, connect, encoded, infer

PIXELS = Preprocessing.for_shape((1, 28, 28))


def jpeg(image: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    grey = Image.fromarray((image[0] * 255).round().astype(np.uint8))
    grey.convert(mode).resize((56, 56)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_png_bytes_are_answered_as_the_same_pixels(client, test_images):
    images = test_images[0][:12]
    payloads = encoded([encode_png(i) for i in images])
    for threshold in ("inf", "-inf", None):
        knob = {} if threshold is None else {"threshold": threshold}
        from_bytes = classify(client, payloads, **knob)
        from_pixels = classify(client, images, **knob)
        np.testing.assert_array_equal(from_bytes.logits, from_pixels.logits)
        np.testing.assert_array_equal(from_bytes.routes, from_pixels.routes)


def test_jpeg_and_base64_bytes_are_the_models_answer_on_the_decoded_image(client, test_images):
    """A JPEG at another size and in colour is resized and turned grey by the router, as its
    preprocessing says; base64 text is the same payload."""
    images = test_images[0][:6]
    files = [jpeg(images[0], "RGB"), *(jpeg(i) for i in images[1:])]
    decoded = np.stack([PIXELS.decode(f) for f in files])
    expected = infer(client, "teacher", {"image": decoded}, ["logits"])["logits"]
    for payloads in (files, [base64.b64encode(f) for f in files]):
        answer = classify(client, encoded(payloads), threshold="inf")
        assert set(answer.routes) == {"teacher"}
        np.testing.assert_allclose(answer.logits, expected, atol=1e-5)


def bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (10000, 10000)).save(buffer, "PNG")  # ~100 KB, 100 M pixels decoded
    return buffer.getvalue()


def cmyk() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (28, 28)).save(buffer, "JPEG")
    return buffer.getvalue()


BAD = {
    "empty": (lambda: b"", "empty image payload"),
    "truncated jpeg": (lambda: jpeg(np.ones((1, 28, 28)) * 0.5)[:300], "corrupt image"),
    "pdf": (lambda: b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n", "not a PNG or JPEG"),
    "png bomb": (bomb, f"over the limit of {MAX_PIXELS} pixels"),
    "cmyk": (cmyk, "send a grey or RGB image"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_payload_is_a_clear_client_error_and_the_server_keeps_serving(
    client, test_images, kind
):
    make, words = BAD[kind]
    good = encode_png(test_images[0][0])
    with pytest.raises(InferenceServerException) as err:
        classify(client, encoded([good, make()]))
    message = str(err.value)
    assert words in message and "image_bytes row 1" in message, message
    assert "400" in message or "INVALID_ARGUMENT" in message, message
    assert client.is_server_ready()
    assert len(classify(client, encoded([good])).routes) == 1


def test_a_bad_request_leaves_its_batch_mates_answered(server, test_images):
    """Eight requests at once, one of them corrupt: the router gets them in few executions;
    the other seven are answered, each its own pixels' answer."""
    images = test_images[0][:7]
    expected = classify(connect(server.grpc_url, "grpc"), images, threshold="inf")

    def send(k: int):
        client = connect(server.grpc_url, "grpc")
        if k == 7:
            with pytest.raises(InferenceServerException, match="not a PNG or JPEG"):
                classify(client, encoded([b"GIF89a not really"]), threshold="inf")
            return None
        return classify(client, encoded([encode_png(images[k])]), threshold="inf")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    for k, answer in enumerate(answers[:7]):
        np.testing.assert_array_equal(answer.logits[0], expected.logits[k])


def test_a_request_sends_pixels_or_bytes_not_both_nor_neither(client, test_images):
    image = test_images[0][:1]
    both = {"image": image, "image_bytes": encoded([encode_png(image[0])])}
    with pytest.raises(InferenceServerException, match="send one of image"):
        infer(client, "ebjr_router", both, ["class"])
    with pytest.raises(InferenceServerException, match="400|INVALID_ARGUMENT"):
        infer(client, "ebjr_router", {}, ["class"])  # Triton refuses a request with no input


@pytest.mark.parametrize("router", ["ebjr_regressor", "ebjr_specialized"])
def test_the_other_routers_take_bytes_too(client, test_images, router):
    images = test_images[0][:4]
    outputs = ["route"]
    from_bytes = infer(
        client, router, {"image_bytes": encoded([encode_png(i) for i in images])}, outputs
    )
    from_pixels = infer(client, router, {"image": images}, outputs)
    np.testing.assert_array_equal(from_bytes["route"], from_pixels["route"])


def test_a_base64_png_in_json_over_http_as_the_readme_sends_it(server, test_images):
    """The README's curl example: the file base64-encoded as a BYTES element of a JSON
    request."""
    image = test_images[0][3]
    body = {
        "inputs": [
            {
                "name": "image_bytes",
                "shape": [1, 1],
                "datatype": "BYTES",
                "data": [base64.b64encode(encode_png(image)).decode()],
            }
        ],
        "parameters": {"threshold": "inf"},
    }
    request = urllib.request.Request(
        f"http://{server.http_url}/v2/models/ebjr_router/infer", data=json.dumps(body).encode()
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        outputs = {o["name"]: o["data"] for o in json.loads(response.read())["outputs"]}
    expected = classify(connect(server.http_url, "http"), image[None], threshold="inf")
    assert outputs["class"] == [int(expected.classes[0])] and outputs["route"] == ["teacher"]
