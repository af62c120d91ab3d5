"""Admission control on the real server. The router serves at most ``admit_requests``
requests per execution, the newest, and refuses the older ones at once, never executing them
(``router_admit``: 2, its Teacher sleeping 2 s), and load shedding counts the requests an
execution took in, the refused ones included. A Triton queue policy refuses what a full
queue cannot hold, over HTTP (503) and gRPC (UNAVAILABLE), and the shared client retries a
refusal with backoff, then says in one line that the server is overloaded (``teacher_queue_1``
sleeps 2 s per execution and holds one waiting request; ``conftest.build_test_repository``)."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from fault_routers import SMALL_QUEUE
from tritonclient.utils import InferenceServerException

from ebjr.ops.client import PROTOCOLS, Overloaded, connect, infer, refused

REFUSED = {"http": "503", "grpc": "StatusCode.UNAVAILABLE"}


def busy(server, images, answered: list) -> threading.Thread:
    """One request on its own connection, in the background (it takes 2 s)."""

    def send() -> None:
        client = connect(server.grpc_url, "grpc")
        answered.append(infer(client, SMALL_QUEUE, {"image": images}, ["logits"])["logits"])

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_full_queue_refuses_at_once_and_the_client_backs_off_then_says_so(
    server, test_images, protocol
):
    images = test_images[0][:1]
    answered: list = []
    running = busy(server, images, answered)  # executing
    time.sleep(0.3)
    waiting = busy(server, images, answered)  # the one request the queue holds
    time.sleep(0.3)
    client = connect(server.http_url if protocol == "http" else server.grpc_url, protocol)
    tensor = PROTOCOLS[protocol].InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    began = time.perf_counter()
    with pytest.raises(InferenceServerException) as err:
        client.infer(SMALL_QUEUE, [tensor])
    refused_in = time.perf_counter() - began
    assert str(err.value.status()) == REFUSED[protocol] and refused(err.value), err.value
    assert refused_in < 0.5, f"refused after {refused_in:.2f} s: it waited"
    with pytest.raises(Overloaded, match="refused the request 4 times.*overloaded, retry later"):
        infer(client, SMALL_QUEUE, {"image": images}, ["logits"])
    running.join()
    waiting.join()
    assert len(answered) == 2  # both admitted requests were answered


def test_an_overloaded_router_serves_the_newest_requests_and_refuses_the_rest_at_once(
    server, test_images
):
    images = test_images[0][:1]

    def ask(threshold: str):
        """One try, no retry: the raw client, not ``infer``."""
        client = connect(server.grpc_url, "grpc")
        tensor = PROTOCOLS["grpc"].InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        try:
            result = client.infer("router_admit", [tensor], parameters={"threshold": threshold})
        except InferenceServerException as err:
            return err
        return result.as_numpy("route")[:, 0].astype(str)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        busy = [pool.submit(ask, "inf")]  # instance 1 waits on the 2 s Teacher
        time.sleep(0.2)
        busy.append(pool.submit(ask, "inf"))  # instance 2 waits behind it
        time.sleep(0.3)
        waiting = [pool.submit(ask, "inf") for _ in range(6)]  # queued: one batch of 6 later
        answers = [f.result() for f in waiting]
        for f in busy:
            f.result()
    refusals = [a for a in answers if isinstance(a, InferenceServerException)]
    served = [a for a in answers if not isinstance(a, InferenceServerException)]
    assert len(refusals) == 4 and len(served) == 2, answers
    assert all(str(r.status()) == "StatusCode.INTERNAL" and refused(r) for r in refusals)
    assert "is overloaded" in refusals[0].message() and "retry later" in refusals[0].message()
    # the load shedder counts the 6 it took in, not the 2 admitted: no Teacher wait
    assert all(a.tolist() == ["student_overload"] for a in served)
