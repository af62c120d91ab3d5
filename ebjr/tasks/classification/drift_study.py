"""Does ``teacher_fraction`` hold under drift? The tracking study of ``EVALUATION.md``.

The test images are served in order, in batches of ``BATCH`` rows, once clean and once with
σ=``SIGMA`` Gaussian noise (clipped to [0, 1]). For each Teacher share asked, the router's
threshold per batch comes either from the calibration table (the validation quantile, what
``teacher_fraction`` serves by default) or from the live scores of the rows served so far
(``ebjr.core.tracking.ScoreWindow`` of ``WINDOW`` rows, what ``track_window`` serves), exactly
as the router resolves it. Reported: the share served and the accuracy of the answers.

Shapes: ``student``, ``teacher``: ``(N, C)`` logits; ``labels``: ``(N,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebjr.core.calibration import Calibration, resolve_thresholds
from ebjr.core.policy import RoutingPolicy
from ebjr.core.tracking import ScoreWindow

SIGMA = 0.2
SHARES = (0.1, 0.25, 0.5)
WINDOW = 2000  # rows (the router's track_window in the study)
BATCH = 16
ALLOWED = 0.05  # the tracked share may miss the asked one by this much


@dataclass(frozen=True)
class Served:
    """One stream at one asked share, with and without tracking."""

    stream: str
    asked: float
    calibrated_share: float
    calibrated_accuracy: float
    tracked_share: float
    tracked_accuracy: float
    student_accuracy: float  # of the stream, the Student alone
    teacher_accuracy: float  # and the Teacher alone

    @property
    def met(self) -> bool:
        return abs(self.tracked_share - self.asked) <= ALLOWED


def noisy(images: np.ndarray, sigma: float = SIGMA, seed: int = 0) -> np.ndarray:
    """``images`` with Gaussian noise of ``sigma``, clipped to [0, 1] (float32)."""
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images + noise, 0, 1).astype(np.float32)


def serve(
    scores: np.ndarray,
    right: tuple[np.ndarray, np.ndarray],
    calibration: Calibration,
    asked: float,
    window: ScoreWindow | None,
) -> tuple[float, float]:
    """``(Teacher share, accuracy)`` serving the stream in order, batch by batch, each batch
    at the threshold a ``teacher_fraction=asked`` request resolves to. ``right``: whether the
    Student's and the Teacher's answers are right, ``(N,)`` each."""
    parameters = f'{{"teacher_fraction": {asked!r}}}'
    sent = np.zeros(len(scores), dtype=bool)
    for start in range(0, len(scores), BATCH):
        rows = slice(start, start + BATCH)
        (t,) = resolve_thresholds(parameters, calibration.parity_thresholds, calibration, window)
        sent[rows] = scores[rows] < t
        if window is not None:
            window.add(scores[rows])
    student_right, teacher_right = right
    return float(sent.mean()), float(np.where(sent, teacher_right, student_right).mean())


def drift_study(
    streams: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    policy: RoutingPolicy,
    calibration: Calibration,
) -> list[Served]:
    """Every stream (name -> ``(student, teacher, labels)``) at every share in ``SHARES``."""
    found = []
    for name, (student, teacher, labels) in streams.items():
        scores = policy.effective_scores(student)
        right = (policy.student_correct(student, labels), teacher.argmax(axis=1) == labels)
        alone = (float(right[0].mean()), float(right[1].mean()))
        for asked in SHARES:
            fixed = serve(scores, right, calibration, asked, None)
            live = serve(scores, right, calibration, asked, ScoreWindow(WINDOW))
            found.append(Served(name, asked, *fixed, *live, *alone))
    return found
