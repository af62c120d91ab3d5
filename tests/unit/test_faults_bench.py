"""``make faults``'s repository (``ebjr.bench.faults``): the two routers it hangs call the
Teachers it means to stop, and the local one is the real Teacher's ONNX file behind the
hanging wrapper."""

from __future__ import annotations

from ebjr.bench import faults
from ebjr.bench.overload import Outcome, rate
from ebjr.build import model_config as mc
from ebjr.core.layout import DEFAULT_REPOSITORY, ROUTER, TEACHER, VERSION, config_path, onnx_path


def test_the_fault_routers_call_the_teachers_that_are_stopped(tmp_path):
    repo = faults.fault_repository(DEFAULT_REPOSITORY, tmp_path / "repo", "127.0.0.1:9")
    router = mc.parameters(mc.read(config_path(DEFAULT_REPOSITORY, ROUTER)))
    local = mc.parameters(mc.read(config_path(repo, faults.LOCAL)))
    remote = mc.parameters(mc.read(config_path(repo, faults.REMOTE)))
    assert local["teacher_model"] == faults.LOCAL_TEACHER
    assert local["teacher_execution"] == "bls"  # the hang is in its Python model, not in ONNX
    assert remote["teacher_url"] == "127.0.0.1:9"
    # everything else is the router as built: its measured deadline, its breaker
    for edited, keys in (
        (local, ("teacher_model", "teacher_execution")),
        (remote, ("teacher_url",)),
    ):
        assert {k: v for k, v in edited.items() if k not in keys} == {
            k: v for k, v in router.items() if k not in keys
        }
    hanging = repo / faults.LOCAL_TEACHER
    assert "ebjr.bench.hanging_teacher" in (hanging / VERSION / "model.py").read_text()
    assert (
        onnx_path(repo, faults.LOCAL_TEACHER).read_bytes()
        == onnx_path(DEFAULT_REPOSITORY, TEACHER).read_bytes()
    )
    flag = mc.parameters(mc.read(config_path(repo, faults.LOCAL_TEACHER)))["hang_flag"]
    assert flag == str(faults.hang_flag(repo))


def test_rate_counts_answered_requests_after_the_settling_time():
    ok, refused = Outcome("answered", 1.0), Outcome("refused", 1.0)
    ended = [(0.5, ok), (1.5, ok), (2.0, refused), (3.0, ok)]
    assert rate(ended) == 3 / 3.0
    assert rate(ended, since=1.0) == 2 / 2.0
