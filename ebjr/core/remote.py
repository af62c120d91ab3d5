"""A model on another Triton server, called over gRPC with ``tritonclient``'s asyncio client.

One ``RemoteModel`` holds one reused gRPC connection and runs its own event loop on a helper
thread, so a synchronous caller (the router's ``execute``, the edge client) waits on one call
at a time with a deadline. The channel retries a lost server quickly (backoff capped at
``MAX_RECONNECT_BACKOFF_MS``), so a restarted server is used again within seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as grpcaio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from ebjr.core.routing import StageError

DEFAULT_TIMEOUT_S = 10.0  # a remote call always has a deadline: an unreachable host never hangs
MAX_RECONNECT_BACKOFF_MS = 2000
URL = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-_]+):\d{1,5}$")
MAX_MESSAGE = 2**31 - 1


class RemoteError(StageError):
    """The remote server answered with an error, or not within the deadline."""


@dataclass(frozen=True)
class TLS:
    """Optional TLS for the gRPC channel: PEM files (CA bundle; client key and chain for mTLS)."""

    root_certificates: str = ""
    private_key: str = ""
    certificate_chain: str = ""

    def client_args(self) -> dict:
        """``tritonclient.grpc.aio.InferenceServerClient`` keyword arguments: ``ssl`` and the
        PEM files' paths (the client reads them); ``ValueError`` for a file that is not there,
        or a key without its certificate."""
        files = {
            "root_certificates": self.root_certificates,
            "private_key": self.private_key,
            "certificate_chain": self.certificate_chain,
        }
        for name, path in files.items():
            if path and not Path(path).is_file():
                raise ValueError(f"TLS {name} file {path!r} does not exist")
        if bool(self.private_key) != bool(self.certificate_chain):
            raise ValueError("mutual TLS needs both a private key and its certificate chain")
        return {"ssl": True, **{k: v or None for k, v in files.items()}}


def check_url(url: str) -> str:
    """``host:port`` (gRPC, no scheme), else ``ValueError`` naming the expected form."""
    if not URL.match(url or ""):
        raise ValueError(f"a remote model URL must be host:port (gRPC), not {url!r}")
    return url


class RemoteModel:
    """``model(batch, timeout_s) -> (N, C)``: ``output`` of ``name`` on the server at ``url``."""

    def __init__(
        self, url: str, name: str, input_name: str, output_name: str, tls: TLS | None = None
    ) -> None:
        self.url, self.name = check_url(url), name
        self.input_name, self.output_name = input_name, output_name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"remote-{name}", daemon=True
        )
        self._thread.start()
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.min_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
            # every address the name resolves to (a headless Kubernetes Service: every pod)
            ("grpc.lb_policy_name", "round_robin"),
        ]
        tls_args = tls.client_args() if tls is not None else {}

        async def connect() -> grpcaio.InferenceServerClient:  # the channel binds to this loop
            return grpcaio.InferenceServerClient(url, channel_args=options, **tls_args)

        self._client = self._submit(connect()).result()

    def _submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _infer(self, batch: np.ndarray, timeout_s: float) -> np.ndarray:
        tensor = InferInput(self.input_name, list(batch.shape), np_to_triton_dtype(batch.dtype))
        tensor.set_data_from_numpy(batch)
        result = await self._client.infer(
            self.name,
            [tensor],
            outputs=[InferRequestedOutput(self.output_name)],
            client_timeout=timeout_s,
        )
        return result.as_numpy(self.output_name)

    def __call__(self, batch: np.ndarray, timeout_s: float = 0.0) -> np.ndarray:
        """One call with a deadline (``DEFAULT_TIMEOUT_S`` when ``timeout_s`` is 0)."""
        timeout_s = timeout_s or DEFAULT_TIMEOUT_S
        pending = self._submit(self._infer(np.ascontiguousarray(batch), timeout_s))
        try:
            return pending.result(timeout_s + 1.0)  # the gRPC deadline fires first
        except InferenceServerException as err:
            raise RemoteError(f"{self.name} at {self.url} failed: {err.message()}") from None
        except concurrent.futures.TimeoutError:
            pending.cancel()
            raise RemoteError(
                f"{self.name} at {self.url} did not answer within {timeout_s * 1000:.0f} ms"
            ) from None

    def close(self) -> None:
        """Close the connection and stop the helper thread."""
        if self._loop.is_running():
            self._submit(self._client.close()).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class HttpRemoteModel:
    """``RemoteModel``'s interface over HTTP/REST (``tritonclient.http``), for callers where
    only HTTP gets through; the timeout is the client's connection and network timeout."""

    def __init__(
        self, url: str, name: str, input_name: str, output_name: str, timeout_s: float
    ) -> None:
        import tritonclient.http as httpclient

        self.url, self.name = check_url(url), name
        self.input_name, self.output_name = input_name, output_name
        self._http = httpclient
        self._client = httpclient.InferenceServerClient(
            url, connection_timeout=timeout_s, network_timeout=timeout_s
        )

    def __call__(self, batch: np.ndarray, timeout_s: float = 0.0) -> np.ndarray:
        tensor = self._http.InferInput(
            self.input_name, list(batch.shape), np_to_triton_dtype(batch.dtype)
        )
        tensor.set_data_from_numpy(np.ascontiguousarray(batch), binary_data=True)
        try:
            result = self._client.infer(
                self.name, [tensor], outputs=[self._http.InferRequestedOutput(self.output_name)]
            )
        except InferenceServerException as err:
            raise RemoteError(f"{self.name} at {self.url} failed: {err.message()}") from None
        except Exception as err:  # refused, timed out: the HTTP client raises socket errors
            raise RemoteError(f"{self.name} at {self.url} failed: {err}") from None
        return result.as_numpy(self.output_name)

    def close(self) -> None:
        self._client.close()
