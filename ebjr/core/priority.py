"""Background work that only takes otherwise idle CPU: the calling thread moves to Linux's
``SCHED_IDLE`` policy, so the scheduler runs it only when no normal thread wants the core.

The live audit's worker runs here (``ebjr.serving.audit``): at normal priority its Teacher
calls took cores from the requests on a saturated server (``AUDIT.md``).
"""

from __future__ import annotations

import os


def run_when_idle() -> bool:
    """Move the calling thread (not its process) to ``SCHED_IDLE``; return whether it moved
    (False where the platform has no such policy)."""
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: the calling thread on Linux
    except OSError:
        return False
    return True
