"""The server tests: one real ``tritonserver`` per test session, on free loopback ports.

It serves a temporary copy of ``model_repository/``, the Python-wrapped Student and Teacher and
the router's floor model (``ebjr.bench.bench_repository``), plus fault-injection models
(``tests/server/fault_models``), router variants wired to them (``fault_routers``), an
audited copy of the default router, a router whose Student takes 14x14 images, and the
Teacher behind a decoder of encoded images (``teacher_bytes``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

import psutil
import pytest
from certificates import Certificates, make_certificates
from fault_routers import (
    FAULT_MODELS,
    FAULT_ROUTERS,
    ONE_INSTANCE,
    SLOW,
    SLOW_ROW_S,
    SMALL_QUEUE,
    hang_flag,
    mtls_routers,
)

from ebjr.bench.bench_repository import bench_repository
from ebjr.build import model_config as mc
from ebjr.build.router_config import RouterSettings
from ebjr.core.layout import (
    DEFAULT_REPOSITORY,
    ROUTER,
    STUDENT,
    STUDENT_CANDIDATES,
    TEACHER,
    config_path,
    onnx_path,
)
from ebjr.ops.client import connect
from ebjr.ops.restricted import FOR_PERF_ANALYZER
from ebjr.ops.server import TritonServer
from ebjr.tasks.classification.repository import build_repository, write_bytes_entry

# The default router with the live audit on every kept row, in short windows (test_server_audit),
# and with teacher_fraction tracking the live scores (test_server_tracking)
AUDITED, TRACKED = "ebjr_router_audited", "ebjr_router_tracked"
AUDITED_ROUTERS = {
    # a Teacher deadline far above its calls: an audit call that times out is not counted,
    # and the committed 400 ms (measured where the repository was built) is tight on a slower
    # machine, where it made the counting test fail
    AUDITED: {"audit_share": "1.0", "audit_window": "200", "teacher_timeout_ms": "5000"},
    TRACKED: {"track_window": "1000"},
}
# The default Teacher behind the 14x14 Student candidate of make models (a router at two
# resolutions: test_server_mixed_resolution)
MIXED, MIXED_STUDENT = "ebjr_router_14px", "student_14px"
LOW_RES_STUDENT = STUDENT_CANDIDATES / "student_large_kd_14px.onnx"


def add_mixed_resolution_router(dest: Path) -> None:
    """``MIXED`` and its Student ``MIXED_STUDENT`` in ``dest``, written by the repository
    builder (uncalibrated: routing on energy at a numeric default) beside ``dest``'s Teacher."""
    built = dest.parent / "mixed_resolution"
    settings = RouterSettings(default_threshold="0", score="energy", teacher_timeout_ms=2000)
    build_repository(LOW_RES_STUDENT, onnx_path(dest, TEACHER), built, settings)
    for source, name, overrides in (
        (STUDENT, MIXED_STUDENT, {}),
        (ROUTER, MIXED, {"student_model": MIXED_STUDENT}),
    ):
        shutil.copytree(built / source, dest / name)
        config = mc.edited(mc.read(config_path(built, source)), overrides, name=name)
        mc.write(config_path(dest, name), config)


def build_test_repository(dest: Path, certs: Certificates) -> Path:
    """``model_repository/`` + the models ``make bench`` measures beside it + fault models +
    router variants (the mutual-TLS ones using ``certs``), written to ``dest``."""
    bench_repository(DEFAULT_REPOSITORY, dest)
    for model in ("teacher_raises", "teacher_sleeps", "teacher_switch"):
        shutil.copytree(FAULT_MODELS / model, dest / model)
    switch = config_path(dest, "teacher_switch")
    mc.write(switch, mc.edited(mc.read(switch), {"hang_flag": str(hang_flag(dest))}))
    # teacher_sleeps with room for one waiting request: the admission-control tests
    sleeps = mc.read(config_path(dest, "teacher_sleeps"))
    small = mc.edited(sleeps, name=SMALL_QUEUE)
    mc.set_batching(small, 0, mc.QueuePolicy(max_queue_size=1))
    slow = mc.edited(sleeps, {"sleep_s": "0", "row_sleep_s": str(SLOW_ROW_S)}, name=SLOW)
    for name, config in ((SMALL_QUEUE, small), (SLOW, slow)):
        shutil.copytree(dest / "teacher_sleeps", dest / name)
        mc.write(config_path(dest, name), config)
    config = mc.read(config_path(DEFAULT_REPOSITORY, ROUTER))
    for name, overrides in {**FAULT_ROUTERS, **mtls_routers(certs), **AUDITED_ROUTERS}.items():
        shutil.copytree(DEFAULT_REPOSITORY / ROUTER, dest / name)
        instances = 1 if name in ONE_INSTANCE else None
        mc.write(
            config_path(dest, name), mc.edited(config, overrides, name=name, instances=instances)
        )
    add_mixed_resolution_router(dest)
    write_bytes_entry(dest)  # teacher_bytes: the edge client's encoded images
    return dest


SERVER_PROCESSES = ("tritonserver", "triton_python_backend_stub")


@pytest.fixture(scope="session", autouse=True)
def no_server_outlives_the_session():
    """Fail the suite if any server process started by this session is still alive at its
    end (each carries this session's marker in its environment), and kill it."""
    marker = uuid.uuid4().hex
    os.environ["EBJR_TEST_SESSION"] = marker
    yield
    deadline = time.monotonic() + 15  # a server being stopped may still be exiting

    def leftovers() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if (
                    proc.info["name"] in SERVER_PROCESSES
                    and (proc.environ().get("EBJR_TEST_SESSION") == marker)
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
        return found

    while (alive := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    found = []
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            found.append((proc.pid, proc.name(), " ".join(proc.cmdline()[-4:])))
            proc.kill()
    if alive:
        pytest.fail(f"server processes outlived the test session: {found}")


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> Certificates:
    """A CA, the mutual-TLS Teacher server's certificate and the clients' (``certificates``)."""
    return make_certificates(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="session")
def server(tmp_path_factory, certificates) -> TritonServer:
    root = Path(tmp_path_factory.mktemp("triton"))
    log = root / "tritonserver.log"
    repository = build_test_repository(root / "model_repository", certificates)
    # statistics stays open for perf_analyzer (the benchmark smoke test), as on the servers
    # make bench starts; test_server_security.py checks the launcher's full default
    triton = TritonServer.on_free_ports(repository, log, restricted_apis=FOR_PERF_ANALYZER)
    triton.start()
    try:
        triton.wait_ready(timeout=180)
    except Exception:
        triton.stop()
        raise RuntimeError(f"tritonserver did not start:\n{log.read_text()[-4000:]}") from None
    yield triton
    triton.stop()


@pytest.fixture(params=["http", "grpc"])
def client(request, server):
    url = server.http_url if request.param == "http" else server.grpc_url
    opened = connect(url, request.param)
    yield opened
    opened.close()  # an idle connection left open holds the server's shutdown


def pytest_collection_modifyitems(items):
    """Every test under ``tests/server`` carries the ``server`` marker (``-m "not server"``)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.server)
