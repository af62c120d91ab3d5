"""Routing policies: what a Student's logits mean for routing, as one small class each.

A policy turns a Student's logits into the routing score, decides which rows the Student keeps
at given thresholds, maps the Student's answers into the Teacher's label space, and says which
rows the Student got right. The router, calibration, evaluation and the repository builder all
go through this one interface:

    policy = GeneralPolicy(score=entropy)
    scores, keep, answers = policy.decide(logits, thresholds)

``GeneralPolicy`` is plain EBJR (eq. 6). ``SpecializedPolicy`` is specialized EBJR (eqs. 16-18):
a Student trained on the top-C popular classes plus "other".

Each policy names itself in the router's ``config.pbtxt`` (the ``mode`` parameter and its own
settings: ``to_parameters`` / ``from_parameters``) and is found by that name in ``POLICIES``.
A new policy is one ``@registered`` subclass; the router, the builder (``--policy``) and
calibration need no edit.

Shapes: ``logits: (N, C_s)`` from the Student; ``thresholds: (N,)``; ``labels: (N,)`` in the
Teacher's label space; answers ``(N, C_t)``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ebjr.core.routing import to_student
from ebjr.core.scores import ScoreFn

UNKNOWN_LOGIT = np.float32(-1e30)  # classes the Student does not know: finite, JSON-safe


DEFAULT_MODE = "general"  # a router whose config.pbtxt names no mode


@dataclass(frozen=True)
class RoutingPolicy(ABC):
    """One way of routing on a Student's logits. ``score`` maps ``(N, C) -> (N,)``."""

    score: ScoreFn
    #: the policy's name: the ``mode`` parameter of the router's ``config.pbtxt``
    mode: ClassVar[str]

    @abstractmethod
    def scores(self, logits: np.ndarray) -> np.ndarray:
        """(N,) float32 routing score ``s(x)``: higher means more familiar to the Student."""

    @abstractmethod
    def keep(self, scores: np.ndarray, thresholds: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """(N,) bool: True where the Student's answer stands."""

    @abstractmethod
    def answers(self, logits: np.ndarray) -> np.ndarray:
        """The Student's answers in the Teacher's label space, ``(N, C_t)``."""

    @abstractmethod
    def student_correct(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N,) bool: the Student names the right Teacher label."""

    @abstractmethod
    def effective_scores(self, logits: np.ndarray) -> np.ndarray:
        """(N,) scores for calibration: ``effective >= t`` equals ``keep`` for every finite
        ``t``, so threshold sweeps apply unchanged."""

    #: whether the ``-inf`` threshold (every row on the Student) is an operating point
    keeps_everything_at_minus_inf: ClassVar[bool] = True

    def to_parameters(self) -> dict[str, str]:
        """The ``config.pbtxt`` parameters that name this policy (its score is set apart)."""
        return {} if self.mode == DEFAULT_MODE else {"mode": self.mode}

    @classmethod
    def from_parameters(cls, p: dict[str, str], score: ScoreFn, num_classes: int) -> RoutingPolicy:
        """The policy ``to_parameters`` wrote, routing on ``score``, for a Teacher of
        ``num_classes`` classes. Raises ``ValueError`` naming a missing or bad parameter."""
        return cls(score)

    def with_score(self, score: ScoreFn) -> RoutingPolicy:
        """The same policy routing on another score."""
        return replace(self, score=score)

    def decide(
        self, logits: np.ndarray, thresholds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(scores (N,), keep (N,) bool, answers (N, C_t))`` for one batch."""
        scores = self.scores(logits)
        return scores, self.keep(scores, thresholds, logits), self.answers(logits)


POLICIES: dict[str, type[RoutingPolicy]] = {}  # mode -> policy class


def registered(cls: type[RoutingPolicy]) -> type[RoutingPolicy]:
    """Class decorator: serve ``cls`` under its ``mode``."""
    POLICIES[cls.mode] = cls
    return cls


def policy_from_parameters(p: dict[str, str], score: ScoreFn, num_classes: int) -> RoutingPolicy:
    """The policy a router's ``config.pbtxt`` parameters ``p`` name (``DEFAULT_MODE`` when they
    name none)."""
    mode = p.get("mode", DEFAULT_MODE)
    if mode not in POLICIES:
        raise ValueError(f"mode must be one of {', '.join(sorted(POLICIES))}, not {mode!r}")
    return POLICIES[mode].from_parameters(p, score, num_classes)


@registered
@dataclass(frozen=True)
class GeneralPolicy(RoutingPolicy):
    """EBJR (eqs. 6-7): the Student keeps a row when its score is at or above the threshold."""

    mode: ClassVar[str] = DEFAULT_MODE

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return self.score(logits)

    def keep(self, scores: np.ndarray, thresholds: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return to_student(scores, thresholds)

    def answers(self, logits: np.ndarray) -> np.ndarray:
        return logits

    def student_correct(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return logits.argmax(axis=1) == labels

    def effective_scores(self, logits: np.ndarray) -> np.ndarray:
        return self.scores(logits)


@registered
@dataclass(frozen=True)
class RandomPolicy(GeneralPolicy):
    """A baseline to measure routing against: each row's score is uniform in [0, 1), read from
    a hash of the Student's logits for it, so it knows nothing of how sure the Student is, yet
    the same input always takes the same route (ONNX Runtime's CPU kernels answer a row bit for
    bit the same in any batch). At threshold ``t`` a share of about ``t`` of the rows goes to
    the Teacher. Its ``score`` is not used."""

    mode: ClassVar[str] = "random"

    def scores(self, logits: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(logits, dtype=np.float32)
        draws = [hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows]
        uniform = np.array([int.from_bytes(d, "little") for d in draws], np.float64) / 2.0**64
        return uniform.astype(np.float32)


@registered
@dataclass(frozen=True)
class SpecializedPolicy(RoutingPolicy):
    """Specialized EBJR (eqs. 16-18). The Student's logits are ``(N, C + 1)``: ``classes[i]``
    is the Teacher label of its output ``i`` and column ``other_index`` is "other"."""

    classes: tuple[int, ...] = ()
    other_index: int = 0
    num_classes: int = 0  # the Teacher's class count
    mode: ClassVar[str] = "specialized"
    keeps_everything_at_minus_inf: ClassVar[bool] = False  # "other" rows go to the Teacher

    def to_parameters(self) -> dict[str, str]:
        return {
            "mode": self.mode,
            "student_classes": ",".join(map(str, self.classes)),
            "other_index": str(self.other_index),
        }

    @classmethod
    def from_parameters(
        cls, p: dict[str, str], score: ScoreFn, num_classes: int
    ) -> SpecializedPolicy:
        if "student_classes" not in p or "other_index" not in p:
            raise ValueError(
                "mode specialized needs student_classes and other_index (the builder writes "
                "them with --specialized-student and --popular)"
            )
        classes = tuple(int(c) for c in p["student_classes"].split(","))
        return cls(score, classes, int(p["other_index"]), num_classes)

    def _known(self, logits: np.ndarray) -> np.ndarray:
        return np.delete(logits, self.other_index, axis=1)

    def _predicts_other(self, logits: np.ndarray) -> np.ndarray:
        return logits.argmax(axis=1) == self.other_index

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Eq. 17: the score over the top-C logits only, "other" excluded."""
        return self.score(self._known(logits))

    def keep(self, scores: np.ndarray, thresholds: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Eq. 16: ``s >= t`` and not predicted "other"; the rest go to the Teacher (eq. 18)."""
        return to_student(scores, thresholds) & ~self._predicts_other(logits)

    def answers(self, logits: np.ndarray) -> np.ndarray:
        """Known classes keep their logits; the others get ``UNKNOWN_LOGIT``."""
        out = np.full((len(logits), self.num_classes), UNKNOWN_LOGIT, dtype=np.float32)
        out[:, list(self.classes)] = self._known(logits)
        return out

    def student_correct(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return ~self._predicts_other(logits) & (self.answers(logits).argmax(axis=1) == labels)

    def effective_scores(self, logits: np.ndarray) -> np.ndarray:
        """Scores with rows predicted "other" at ``-inf``."""
        return np.where(self._predicts_other(logits), -np.inf, self.scores(logits)).astype(
            np.float32
        )
