"""The live audit (``audit_share``) on the real server: an audited router answers exactly as
the plain one, every row it keeps at the default thresholds is audited and counted by its
agreement with the Teacher's own answer, and a real Prometheus evaluating the shipped alert rule
(its ``for`` shortened) stays quiet on clean traffic and fires on σ=0.2 noisy traffic from 8
users, while the router logs the drift."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import AUDITED

from ebjr.ops import prometheus as prom
from ebjr.ops.client import classify, connect, infer
from ebjr.ops.prometheus import scrape, value
from ebjr.training import data

ALERT = "EbjrKeptAnswersDisagreeWithTeacher"
USERS = 8


def audited(server) -> tuple[float, float]:
    """The audited rows so far that agreed and disagreed with the Teacher."""
    text = scrape(server.metrics_url)
    return tuple(
        value(text, "ebjr_audit_rows_total", model=AUDITED, agree=a) for a in ("yes", "no")
    )


def settled(server, expected: tuple[float, float], timeout_s: float = 20.0) -> tuple:
    """The audit counts once they reach ``expected`` (the audit runs after the response)."""
    deadline = time.monotonic() + timeout_s
    while (found := audited(server)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


@pytest.fixture(scope="module")
def mixed(server) -> np.ndarray:
    """64 test images the router keeps on the Student, some of them answered differently
    from the Teacher (so the counts can tell agreement from disagreement), and a few it sends
    on."""
    client = connect(server.http_url, "http")
    images = data.load_split("test")[0][:3000]
    kept, disagree = [], []
    for start in range(0, len(images), 64):
        batch = images[start : start + 64]
        answer = classify(client, batch)
        teacher = infer(client, "teacher", {"image": batch}, ["logits"])["logits"].argmax(1)
        rows = start + np.flatnonzero(answer.routes == "student")
        kept += rows.tolist()
        disagree += rows[answer.classes[rows - start] != teacher[rows - start]].tolist()
    assert len(disagree) >= 4
    others = [i for i in range(len(images)) if i not in set(kept)][:8]
    agreeing = [i for i in kept if i not in set(disagree)][: 64 - len(disagree[:8]) - len(others)]
    return images[np.array(disagree[:8] + agreeing + others)]


def test_answers_are_unchanged_and_each_kept_row_is_counted_by_its_agreement(client, server, mixed):
    images = mixed
    yes, no = audited(server)
    plain, answer = classify(client, images), classify(client, images, model=AUDITED)
    np.testing.assert_array_equal(answer.logits, plain.logits)
    assert answer.routes.tolist() == plain.routes.tolist()
    np.testing.assert_array_equal(answer.thresholds, plain.thresholds)
    teacher = infer(client, "teacher", {"image": images}, ["logits"])["logits"].argmax(1)
    kept = answer.routes == "student"
    agree = (answer.classes == teacher)[kept]
    assert (~agree).sum() >= 4 and agree.sum() > 30 and (~kept).sum() > 0
    expected = (yes + agree.sum(), no + (~agree).sum())
    assert settled(server, expected) == expected
    # a request that asks for another operating point is not audited
    classify(client, images, model=AUDITED, threshold="-inf")
    time.sleep(1.0)
    assert audited(server) == expected


def noisy(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 1).astype(np.float32)


def load(server, images: np.ndarray, seconds: float, stop: threading.Event | None = None) -> int:
    """``USERS`` closed-loop HTTP clients sending 8-row batches of ``images`` to the audited
    router at its default thresholds for ``seconds`` (or until ``stop``); requests answered."""
    stop = stop or threading.Event()
    answered = [0] * USERS

    def user(k: int) -> None:
        client = connect(server.http_url, "http")
        deadline = time.monotonic() + seconds
        i = 8 * k
        while time.monotonic() < deadline and not stop.is_set():
            classify(client, images[i % len(images) :][:8], model=AUDITED)
            answered[k] += 1
            i += 8 * USERS

    threads = [threading.Thread(target=user, args=(k,)) for k in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(answered)


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    """A real Prometheus with the shipped rule, its ``for: 1m`` shortened to 5 s."""
    rules = (prom.CONFIG_DIR / "alerts.yml").read_text()
    assert "for: 1m" in rules
    root = Path(tmp_path_factory.mktemp("prometheus-audit"))
    shortened = rules.replace("for: 1m", "for: 5s")
    with prom.running(server.metrics_url, root, interval_s=1, rules=shortened) as url:
        yield url


def test_the_alert_stays_quiet_on_clean_traffic_and_fires_on_noisy_traffic(server, prometheus):
    images = data.load_split("test")[0][256:2256]
    assert load(server, images, 20.0) > 100
    rows = prom.query(prometheus, f'ebjr_audit_window_rows{{model="{AUDITED}"}}')
    assert len(rows) == 2 and min(rows) >= 100  # both instances audited enough to judge
    assert not prom.alerts(prometheus, ALERT)  # neither pending nor firing

    stop = threading.Event()
    sender = threading.Thread(target=load, args=(server, noisy(images, 0.2, 0), 90.0, stop))
    start = time.monotonic()
    sender.start()
    try:
        while not prom.alerts(prometheus, ALERT, "firing") and time.monotonic() - start < 90:
            time.sleep(1.0)
        fired_after = time.monotonic() - start
    finally:
        stop.set()
        sender.join()
    fired = prom.alerts(prometheus, ALERT, "firing")
    assert fired and {a["model"] for a in fired} == {AUDITED}, fired_after
    assert fired_after < 60
    assert "disagree with the Teacher on" in server.log_file.read_text()
