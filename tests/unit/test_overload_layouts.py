"""``make overload``'s two layouts (``ebjr.bench.overload``): the client on a CPU of its own,
the server pinned to the others, or both sharing every CPU."""

from __future__ import annotations

import os
from pathlib import Path

from ebjr.bench.overload import client_on, own_cores
from ebjr.ops.server import TritonServer


def test_the_client_gets_the_last_cpu_and_the_server_the_others(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert own_cores() == ({0, 1, 2}, {3})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
    assert own_cores() is None  # one CPU: nothing to split


def test_a_server_given_cpus_starts_under_taskset_on_them():
    command = TritonServer(Path("model_repository"), cpus={2, 0}).command
    assert command[:3] == ["taskset", "--cpu-list", "0,2"]
    assert command[3].endswith("tritonserver")
    assert TritonServer(Path("model_repository")).command[0].endswith("tritonserver")


def test_the_client_runs_on_its_cpus_for_the_block_only():
    before = os.sched_getaffinity(0)
    last = max(before)
    with client_on({last}):
        assert os.sched_getaffinity(0) == {last}
    assert os.sched_getaffinity(0) == before
