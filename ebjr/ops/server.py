"""Launch the real ``tritonserver`` (Triton 2.51 from the ``nvidia-pytriton`` wheel).

    python -m ebjr.ops.server [--model-repository model_repository] [--host 127.0.0.1]
                          [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]

Assembles the Python backend for this interpreter under ``python_backend/backends`` (Triton's
``libtriton_python.so`` next to a copy of the stub built for this Python version), starts the
server bound to loopback by default, waits until it is ready and says where it listens.
Ctrl-C or SIGTERM (``make stop``) stops it cleanly; if the server dies on its own it is
restarted (at most ``MAX_RESTARTS`` times a minute), and the shared memory it left is removed.
Its risky endpoints need the admin token (``ebjr.ops.restricted``). With ``EBJR_TRITONSERVER``
and ``EBJR_TRITON_BACKENDS`` set it runs that installed Triton instead (``Installation``: the
production image, on NVIDIA's container).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ebjr.core.layout import PROJECT_ROOT
from ebjr.ops import native_backend, restricted, shm
from ebjr.ops.pidfile import RUN_DIR, ServerRecord, claim

BACKEND_DIR = PROJECT_ROOT / "python_backend" / "backends"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_RESTARTS, RESTART_WINDOW_S = 5, 60  # supervision: restart a crashed server this often
TRITONSERVER_ENV, BACKENDS_ENV = "EBJR_TRITONSERVER", "EBJR_TRITON_BACKENDS"


def pytriton_server_dir() -> Path:
    """The ``tritonserver`` folder inside the installed ``nvidia-pytriton`` wheel."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nvidia-pytriton is not installed: run `make venv`")
    return Path(list(spec.submodule_search_locations)[0]) / "tritonserver"


def pytriton_libs() -> Path:
    """The wheel's bundled shared libraries (``libtritonserver-<hash>.so`` among them)."""
    return pytriton_server_dir().parent.parent / "nvidia_pytriton.libs"


def assemble_backend(dest: Path = BACKEND_DIR) -> Path:
    """Put the backends under ``dest``: ``python/`` (the Python backend and this interpreter's
    stub) and ``onnxruntime/`` (the native backend built by ``make backend``); return ``dest``."""
    source = pytriton_server_dir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    files = {
        source / "backends" / "python" / "libtriton_python.so": "libtriton_python.so",
        source / "backends" / "python" / "triton_python_backend_utils.py": (
            "triton_python_backend_utils.py"
        ),
        source / "python_backend_stubs" / version / "triton_python_backend_stub": (
            "triton_python_backend_stub"
        ),
    }
    (dest / "python").mkdir(parents=True, exist_ok=True)
    for src, name in files.items():
        target = dest / "python" / name
        if not src.exists():
            raise RuntimeError(f"{src} is missing: Python {version} is not supported by this wheel")
        if not target.exists() or target.stat().st_size != src.stat().st_size:
            shutil.copy2(src, target)  # a copy, not a link: the stub must sit beside the backend
    native_backend.assemble(dest, pytriton_libs())
    return dest


@dataclass(frozen=True)
class Installation:
    """Which ``tritonserver`` runs, and from which backend folder: the ``nvidia-pytriton``
    wheel's with the backends this project assembles (``make serve``), or an installed
    Triton named by ``EBJR_TRITONSERVER`` and ``EBJR_TRITON_BACKENDS`` (NVIDIA's container:
    ``/opt/tritonserver/bin/tritonserver`` and ``/opt/tritonserver/backends``, with its own
    Python and ONNX Runtime backends)."""

    binary: Path
    backends: Path
    external: bool

    @classmethod
    def current(cls) -> Installation:
        binary = os.environ.get(TRITONSERVER_ENV)
        if not binary:
            return cls(pytriton_server_dir() / "bin" / "tritonserver", BACKEND_DIR, False)
        backends = os.environ.get(BACKENDS_ENV)
        if not backends:
            raise RuntimeError(f"{TRITONSERVER_ENV} is set: set {BACKENDS_ENV} to its backends")
        return cls(Path(binary), Path(backends), True)


def server_command(
    model_repository: Path,
    host: str = "127.0.0.1",
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    extra: list[str] | None = None,
    admin_token: str | None = None,
    restricted_apis: tuple[str, ...] = restricted.RESTRICTED,
) -> list[str]:
    """The ``tritonserver`` command line for ``model_repository`` (``TritonServer.start``
    assembles the backends it names, unless the installation is external), with
    ``restricted_apis`` behind ``admin_token`` unless it is None."""
    installation = Installation.current()
    return [
        str(installation.binary),
        f"--model-repository={Path(model_repository).resolve()}",
        f"--backend-directory={installation.backends}",
        f"--http-address={host}",
        f"--http-port={http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={host}",
        f"--metrics-port={metrics_port}",
        "--model-control-mode=none",
        "--allow-gpu-metrics=false",
        "--metrics-config=summary_latencies=true",  # p50/p95 per model for the dashboard
        "--exit-timeout-secs=10",
        *(restricted.server_flags(admin_token, restricted_apis) if admin_token else []),
        *(extra or []),
    ]


def server_env() -> dict[str, str]:
    """Environment for the server: the venv's interpreter must be the stub's Python (an
    external installation brings its own)."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if Installation.current().external:
        return env
    venv = Path(sys.prefix)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # The copied stub loses its relative RPATH to the wheel's bundled libraries.
    libs = str(pytriton_libs())
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libs, env.get("LD_LIBRARY_PATH")]))
    return env


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (all held open until each is chosen)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def local_address(host: str) -> str:
    """Where a client on this machine reaches a server bound to ``host``."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:  # 0.0.0.0, ::
            return "127.0.0.1"
    return "127.0.0.1" if host == "localhost" else host


def wait_for_group(pgid: int, timeout: float = 5.0) -> None:
    """Wait until no process of group ``pgid`` is left (stubs still exiting still map their
    shared memory)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class TritonServer:
    """A running ``tritonserver`` process: ``start()``, ``wait_ready()``, ``stop()``.

    Its ``restricted_apis`` (by default shared memory, repository, statistics, trace and
    logging) need the admin token (``ebjr.ops.restricted``); none do when it is empty.
    Python-backend shared memory it leaves behind when it dies is removed by ``stop()`` and
    ``remove_orphans()``. ``cpus``: the CPUs it and its stubs may run on (None: all), for a
    benchmark whose load generator must not take the server's cores.
    """

    def __init__(
        self,
        model_repository: Path,
        host: str = "127.0.0.1",
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        log_file: Path | None = None,
        extra: list[str] | None = None,
        restricted_apis: tuple[str, ...] = restricted.RESTRICTED,
        admin_token: str | None = None,
        cpus: set[int] | None = None,
    ) -> None:
        self.model_repository = Path(model_repository)
        self.admin_token = (
            (admin_token or restricted.ensure_token()[0]) if restricted_apis else None
        )
        self.command = server_command(
            model_repository,
            host,
            http_port,
            grpc_port,
            metrics_port,
            extra,
            self.admin_token,
            restricted_apis,
        )
        if cpus:  # the server and its stubs on these CPUs only (util-linux's taskset)
            self.command = [
                "taskset",
                "--cpu-list",
                ",".join(map(str, sorted(cpus))),
                *self.command,
            ]
        self.host = local_address(host)
        self.http_url = f"{self.host}:{http_port}"
        self.grpc_url = f"{self.host}:{grpc_port}"
        self.metrics_url = f"http://{self.host}:{metrics_port}/metrics"
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self._regions_before: set[str] = set()

    @classmethod
    def on_free_ports(
        cls, model_repository: Path, log_file: Path | None = None, **kwargs
    ) -> TritonServer:
        """A server for ``model_repository`` on loopback, on three free ports (``kwargs`` as
        for ``TritonServer``)."""
        http, grpc, metrics = free_ports(3)
        return cls(model_repository, "127.0.0.1", http, grpc, metrics, log_file=log_file, **kwargs)

    def start(self) -> TritonServer:
        if not Installation.current().external:
            assemble_backend()
        self._regions_before = shm.region_names()
        log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115
        # the wheel's tritonserver with the arguments built above, no shell
        self.process = subprocess.Popen(  # nosec B603
            self.command,
            env=server_env(),
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,  # a process group of its own: stop() reaches its stubs
        )
        return self

    def is_ready(self) -> bool:
        try:
            ready = f"http://{self.http_url}/v2/health/ready"  # always http://
            with urllib.request.urlopen(ready, timeout=2) as r:  # nosec B310
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with code {self.process.returncode}")
            if self.is_ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"tritonserver not ready after {timeout:.0f} s")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then after ``timeout`` SIGKILL; either way no Python-backend stub of this
        server is left behind."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the server or stubs still there
        self.process.wait()
        self.remove_orphans()

    def remove_orphans(self) -> int:
        """Once the dead server's process group is gone (stubs still exiting still map their
        regions), remove the Python-backend shared-memory regions it created since its last
        ``start()`` that no live process maps (what a hard kill leaves); how many."""
        wait_for_group(self.process.pid)
        return len(shm.remove_orphans(exclude=self._regions_before))

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exposure_warning(host: str) -> str | None:
    """The warning printed when the server binds beyond loopback, else None."""
    if host in LOOPBACK:
        return None
    return (
        f"WARNING: binding to {host}: the server is reachable from the network. Inference is "
        "open to anyone who reaches it (only the admin endpoints need the token): put it "
        "behind a gateway with authentication and a 4 MB body limit (SECURITY.md)."
    )


class Stop(Exception):
    """Raised by the SIGTERM handler so that ``main`` unwinds and stops the server."""


def _raise_stop(*_: object) -> None:
    raise Stop  # stopping inside the handler would re-enter Popen.wait and deadlock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve an EBJR model repository with Triton.")
    parser.add_argument("--model-repository", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument(
        "--run-dir", type=Path, default=RUN_DIR, help="where the pid file goes (`make stop`)"
    )
    parser.add_argument(
        "--unrestricted",
        action="store_true",
        help="leave shared memory, repository, statistics, trace and logging open to anyone "
        "(loopback only; refused with any other --host)",
    )
    args = parser.parse_args(argv)
    if args.unrestricted and args.host not in LOOPBACK:
        sys.exit(
            f"error: refusing to serve {args.host} with the restricted endpoints open "
            "(--unrestricted): anyone who reaches the port could register the Python "
            "backend's shared memory (SECURITY.md)"
        )
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    token = None
    if not args.unrestricted:
        try:
            token, generated = restricted.ensure_token(args.run_dir / "admin-token")
        except RuntimeError as err:
            sys.exit(f"error: {err}")
        if generated:
            print(
                f"Admin token (for {', '.join(restricted.RESTRICTED)}; header "
                f"{restricted.ADMIN_HEADER}), saved in {args.run_dir / 'admin-token'}:\n"
                f"  {token}",
                flush=True,
            )
    server = TritonServer(
        args.model_repository,
        args.host,
        args.http_port,
        args.grpc_port,
        args.metrics_port,
        restricted_apis=() if args.unrestricted else restricted.RESTRICTED,
        admin_token=token,
    )
    record = ServerRecord(
        os.getpid(),
        args.http_port,
        args.grpc_port,
        args.metrics_port,
        str(args.model_repository),
    )
    try:
        pid_path = claim(args.run_dir, record)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    signal.signal(signal.SIGTERM, _raise_stop)
    crashes: list[float] = []
    served = False
    try:
        while True:
            server.start()
            try:
                server.wait_ready()
            except RuntimeError as err:  # it died before it was ready
                if not served:  # it never came up: the repository or the flags are wrong
                    sys.exit(f"error: {err} (its log is above)")
                print(f"{err} while starting", file=sys.stderr, flush=True)  # a crash: restart
            else:
                if not served:
                    print(
                        f"\nEBJR is being served from {args.model_repository}\n"
                        f"  HTTP     http://{server.http_url}   (e.g. /v2/models/ebjr_router)\n"
                        f"  gRPC     {server.grpc_url}\n"
                        f"  metrics  {server.metrics_url}\n"
                        f"Stop with Ctrl-C or `make stop HTTP_PORT={args.http_port}`.\n",
                        flush=True,
                    )
                else:
                    print("tritonserver is serving again.", file=sys.stderr, flush=True)
                served = True
            code = server.process.wait()
            if removed := server.remove_orphans():
                print(
                    f"removed {removed} shared-memory regions the server left behind",
                    file=sys.stderr,
                )
            # Not asked to stop, so it died (e.g. Triton 2.51 segfaults on an HTTP body over
            # about 4 MB): restart it, unless it keeps dying.
            now = time.monotonic()
            crashes = [t for t in crashes if now - t < RESTART_WINDOW_S] + [now]
            if len(crashes) > MAX_RESTARTS:
                print(
                    f"tritonserver died {len(crashes)} times in {RESTART_WINDOW_S} s; giving up.",
                    file=sys.stderr,
                )
                break
            print(
                f"tritonserver exited unexpectedly (code {code}); restarting ...",
                file=sys.stderr,
                flush=True,
            )
    except (KeyboardInterrupt, Stop):
        print("\nStopping tritonserver ...", file=sys.stderr)
    finally:
        server.stop()
        pid_path.unlink(missing_ok=True)
    sys.exit(0 if server.process.returncode in (0, -signal.SIGTERM, -signal.SIGINT) else 1)


if __name__ == "__main__":
    main()
