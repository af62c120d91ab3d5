"""The fault-injection models and the router variants wired to them, which the test server
serves beside ``model_repository/`` (``conftest.build_test_repository``)."""

from pathlib import Path

from certificates import Certificates

from ebjr.ops.server import free_ports

# A Teacher-only server the remote-Teacher routers call (test_server_remote.py starts it)
REMOTE_TEACHER_PORTS = free_ports(3)
REMOTE_TEACHER_URL = f"127.0.0.1:{REMOTE_TEACHER_PORTS[1]}"
FAULT_MODELS = Path(__file__).parent / "fault_models"
SMALL_QUEUE = "teacher_queue_1"  # teacher_sleeps whose queue holds one request
SLOW = "teacher_slow"  # teacher_sleeps that answers after SLOW_ROW_S per row: healthy, but slow
SLOW_ROW_S = 0.05
# router variant -> the config.pbtxt parameters that differ from ebjr_router's
# (the fallback, fail and timeout variants have no breaker: each of their calls is a real one);
# a fault model is a Python model, called over BLS
NO_BREAKER = {"breaker_failures": "0", "teacher_execution": "bls"}
# the breaker variants: open after 2 failures, half-open after 1 s
BREAKER = {
    "teacher_timeout_ms": "300",
    "breaker_failures": "2",
    "breaker_open_s": "1",
    "teacher_execution": "bls",
}
# Router variants served by one instance, not the router's two: each instance is a stub process
# that costs the server's start and memory. router_slow needs one (below); the others' tests
# send one request at a time. The breaker, admission, audit and tracking variants keep two:
# their tests are about what each instance does.
ONE_INSTANCE = (
    "router_slow",
    "router_fallback",
    "router_fail",
    "router_timeout",
    "router_no_student",
    "router_budget",
    "router_random",
    "router_shed",
    "router_remote",
    "router_remote_fail",
    "router_mtls",
    "router_mtls_no_cert",
    "router_mtls_stranger",
    "router_mtls_wrong_ca",
    "router_mtls_fail",
)
FAULT_ROUTERS = {
    "router_fallback": {"teacher_model": "teacher_raises", **NO_BREAKER},
    "router_fail": {"teacher_model": "teacher_raises", "on_teacher_error": "fail", **NO_BREAKER},
    "router_timeout": {
        "teacher_model": "teacher_sleeps",
        "teacher_timeout_ms": "300",
        **NO_BREAKER,
    },
    # a deadline over a 2-row call (100 ms), but under a 5-row one (250 ms); one instance
    # (ONE_INSTANCE), so the call that teaches it and the one that needs it meet the same one
    "router_slow": {"teacher_model": SLOW, "teacher_timeout_ms": "200", **NO_BREAKER},
    "router_breaker": {"teacher_model": "teacher_switch", **BREAKER},
    # serves at most 2 requests per execution: the admission test keeps both instances busy;
    # an execution that took in 3 or more sheds all its Teacher rows
    "router_admit": {
        "teacher_model": "teacher_sleeps",
        "teacher_timeout_ms": "5000",
        "admit_requests": "2",
        "shed_requests": "3",
        "shed_teacher_share": "0",
        **NO_BREAKER,
    },
    "router_breaker_fail": {
        "teacher_model": "teacher_switch",
        "on_teacher_error": "fail",
        **BREAKER,
    },
    "router_no_student": {"student_model": "teacher_raises", "student_execution": "bls"},
    "router_bls": {"student_execution": "bls", "teacher_execution": "bls"},
    "router_budget": {"teacher_budget_share": "0.3", "teacher_budget_window_s": "600"},
    "router_random": {"mode": "random"},  # the random-routing baseline (RandomPolicy)
    # every execution counts as overloaded: a quarter of each batch's rows may reach the Teacher
    "router_shed": {"shed_requests": "1", "shed_teacher_share": "0.25"},
    "router_remote": {"teacher_url": REMOTE_TEACHER_URL, "teacher_timeout_ms": "3000"},
    "router_remote_fail": {
        "teacher_url": REMOTE_TEACHER_URL,
        "teacher_timeout_ms": "3000",
        "on_teacher_error": "fail",
    },
    "router_remote_breaker": {"teacher_url": REMOTE_TEACHER_URL, **BREAKER},
}


# A Teacher-only server with mutual TLS on gRPC (test_server_mtls.py starts it), and the router
# variants that call it with the right client certificate, none, a stranger's, or a CA that
# does not trust the server
MTLS_TEACHER_PORTS = free_ports(3)
MTLS_TEACHER_URL = f"127.0.0.1:{MTLS_TEACHER_PORTS[1]}"


def mtls_routers(certs: Certificates) -> dict[str, dict[str, str]]:
    """Router variant -> its parameters for the mutual-TLS Teacher at ``MTLS_TEACHER_URL``."""
    remote = {"teacher_url": MTLS_TEACHER_URL, "teacher_timeout_ms": "3000", "teacher_tls": "on"}
    trusted = {**remote, "teacher_tls_ca": str(certs.ca.cert)}
    return {
        "router_mtls": {
            **trusted,
            "teacher_tls_key": str(certs.client.key),
            "teacher_tls_cert": str(certs.client.cert),
        },
        "router_mtls_no_cert": trusted,
        "router_mtls_stranger": {
            **trusted,
            "teacher_tls_key": str(certs.stranger.key),
            "teacher_tls_cert": str(certs.stranger.cert),
        },
        "router_mtls_wrong_ca": {
            **remote,
            "teacher_tls_ca": str(certs.other_ca.cert),
            "teacher_tls_key": str(certs.client.key),
            "teacher_tls_cert": str(certs.client.cert),
        },
        "router_mtls_fail": {**trusted, "on_teacher_error": "fail"},
    }


def hang_flag(repository: Path) -> Path:
    """While this file exists, ``teacher_switch`` in ``repository`` hangs."""
    return repository / "teacher_switch" / "hang"
