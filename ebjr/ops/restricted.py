"""Triton's restricted endpoints: which APIs need the admin token, where the token comes from,
and the flags and headers that carry it.

The launcher starts every server with ``shared-memory``, ``model-repository``,
``statistics``, ``trace`` and ``logging`` restricted over HTTP and gRPC: a request to them
needs the header ``ADMIN_HEADER`` (over gRPC, ``triton-grpc-protocol-`` + it) set to the
token (``admin_headers``). Inference, health, metadata and model
config stay open. The token is, in this order:

- ``$EBJR_ADMIN_TOKEN``;
- the contents of the file ``$EBJR_ADMIN_TOKEN_FILE`` (a mounted Kubernetes Secret);
- ``.run/admin-token``, written (mode 0600) with a fresh random token the first time a server
  is launched without either of the above.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ebjr.ops.pidfile import RUN_DIR

RESTRICTED = ("shared-memory", "model-repository", "statistics", "trace", "logging")
# perf_analyzer reads statistics and cannot send gRPC metadata (its -H is HTTP only): the
# private loopback servers the benchmarks start for it leave statistics open
FOR_PERF_ANALYZER = tuple(api for api in RESTRICTED if api != "statistics")
ADMIN_HEADER = "x-ebjr-admin-token"  # lower case: gRPC metadata keys must be
GRPC_PREFIX = "triton-grpc-protocol-"  # what Triton's gRPC front end expects before the key
TOKEN_ENV, TOKEN_FILE_ENV = "EBJR_ADMIN_TOKEN", "EBJR_ADMIN_TOKEN_FILE"
LOCAL_TOKEN_FILE = RUN_DIR / "admin-token"


def configured_token(local_file: Path | None = None) -> str | None:
    """The admin token from the environment, its file, or the local file (default
    ``LOCAL_TOKEN_FILE``); None if none is set yet."""
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return token
    if path := os.environ.get(TOKEN_FILE_ENV):
        try:
            token = Path(path).read_text().strip()
        except OSError as err:
            raise RuntimeError(f"{TOKEN_FILE_ENV}={path} cannot be read: {err}") from None
        if not token:
            raise RuntimeError(f"{TOKEN_FILE_ENV}={path} is empty")
        return token
    local_file = local_file or LOCAL_TOKEN_FILE
    if local_file.exists():
        return local_file.read_text().strip() or None
    return None


def ensure_token(local_file: Path | None = None) -> tuple[str, bool]:
    """``(token, generated)``: the configured token, or a new one saved in ``local_file``
    (default ``LOCAL_TOKEN_FILE``; readable by this user only) when none is configured."""
    local_file = local_file or LOCAL_TOKEN_FILE
    if token := configured_token(local_file):
        return token, False
    token = secrets.token_urlsafe(32)
    local_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(local_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(token + "\n")
    return token, True


def server_flags(token: str, apis: tuple[str, ...] = RESTRICTED) -> list[str]:
    """The ``tritonserver`` flags that restrict ``apis`` to requests carrying ``token``."""
    if not apis:
        return []
    apis = ",".join(apis)
    return [
        f"--http-restricted-api={apis}:{ADMIN_HEADER}={token}",
        f"--grpc-restricted-protocol={apis}:{ADMIN_HEADER}={token}",
    ]


def admin_headers(protocol: str, token: str | None = None) -> dict[str, str]:
    """The headers (``protocol`` "http") or metadata ("grpc": Triton reads the key with a
    ``triton-grpc-protocol-`` prefix) a ``tritonclient`` call to a restricted endpoint
    passes as ``headers=``; empty when no token is configured."""
    token = token or configured_token()
    if not token:
        return {}
    key = ADMIN_HEADER if protocol == "http" else GRPC_PREFIX + ADMIN_HEADER
    return {key: token}
