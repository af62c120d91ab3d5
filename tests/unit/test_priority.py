import os
import threading

from ebjr.core.priority import run_when_idle


def test_only_the_calling_thread_moves_to_idle_priority():
    seen = {}

    def work():
        seen["moved"] = run_when_idle()
        seen["policy"] = os.sched_getscheduler(threading.get_native_id())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == {"moved": True, "policy": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the thread that started it is untouched
