"""Routing on an energy-based regressor's outputs (paper eqs. 8-11), pure NumPy.

A regressor (``ebjr.tasks.regression.models``) answers four tensors per image, packed in one row per
image for the cascade (``ebjr.core.packing``): ``angle_logits (B,)``, ``direct (1,)``, ``candidates
(M,)`` and ``candidate_scores (M,)``. ``EnergyHead`` says how to read them (the bins' geometry,
the proposal's spread). Scores (``SCORES``, served; ``BASELINES``, for the ablation only) and
predictions (``PREDICTIONS``) are named, so the calibration file and ``config.pbtxt`` can say
which one a router uses.

- ``regression_energy``: form (a), the binned head's exact ``log integral exp S`` (eq. 10);
- ``regression_sampled_energy``: form (b), the pair head's importance-sampling estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ebjr.core.packing import LAYOUT_PARAMETER, RowLayout
from ebjr.core.scores import ScoreContext, ScoreFactory
from ebjr.tasks.regression import energy as rs

BINS = 48
MAX_ANGLE = 60.0  # degrees: angles are uniform in [-MAX_ANGLE, MAX_ANGLE]
BIN_WIDTH = 2 * MAX_ANGLE / BINS  # 2.5 degrees
SAMPLES = 32
PROPOSAL_STD = 8.0  # degrees
PROPOSAL_SEED = 0
SCORES = ("regression_energy", "regression_sampled_energy")
BASELINES = ("negative_variance", "negative_entropy")
PREDICTIONS = ("binned_mean", "binned_mode", "sampled_mean")


@dataclass(frozen=True)
class EnergyHead:
    """The geometry of a regressor's energy outputs: bin ``k`` covers ``[low + k * bin_width,
    low + (k + 1) * bin_width)``; the candidates were drawn from ``N(direct, proposal_std^2)``."""

    low: float = -MAX_ANGLE
    bin_width: float = BIN_WIDTH
    proposal_std: float = PROPOSAL_STD

    def parameters(self) -> dict[str, str]:
        return {f"head_{k}": repr(v) for k, v in asdict(self).items()}

    @classmethod
    def from_parameters(cls, p: dict[str, str]) -> EnergyHead:
        return cls(**{k: float(p[f"head_{k}"]) for k in asdict(cls()) if f"head_{k}" in p})

    def centres(self, bins: int) -> np.ndarray:
        return rs.bin_centres(bins, self.low, self.bin_width)


def score(name: str, found: dict[str, np.ndarray], head: EnergyHead) -> np.ndarray:
    """The score ``name`` (``SCORES`` or ``BASELINES``) of each image: ``(N,) float32``."""
    logits = found["angle_logits"]
    if name == "regression_energy":
        return rs.binned_energy(logits, head.bin_width)
    if name == "regression_sampled_energy":
        return rs.sampled_energy(
            found["candidate_scores"], found["candidates"], found["direct"][:, 0], head.proposal_std
        )
    if name == "negative_variance":
        return rs.negative_variance(logits, head.centres(logits.shape[1]))
    if name == "negative_entropy":
        return rs.negative_entropy(logits)
    raise ValueError(f"unknown regression score {name!r}; choose one of {SCORES + BASELINES}")


def predict(name: str, found: dict[str, np.ndarray], head: EnergyHead) -> np.ndarray:
    """The prediction ``name`` (``PREDICTIONS``) for each image: ``(N,) float32`` degrees."""
    logits = found["angle_logits"]
    if name == "binned_mean":
        return rs.binned_mean(logits, head.centres(logits.shape[1]))
    if name == "binned_mode":
        return rs.binned_mode(logits, head.centres(logits.shape[1]))
    if name == "sampled_mean":
        return rs.sampled_mean(
            found["candidate_scores"], found["candidates"], found["direct"][:, 0], head.proposal_std
        )
    raise ValueError(f"unknown prediction {name!r}; choose one of {PREDICTIONS}")


def predictions(head: EnergyHead | None = None) -> dict[str, Callable[[dict], np.ndarray]]:
    """Every prediction form, as ``{name: found -> (N,)}``."""
    head = head or EnergyHead()
    return {name: (lambda found, n=name: predict(n, found, head)) for name in PREDICTIONS}


@dataclass(frozen=True)
class RegressionScore:
    """A ``ScoreFn`` on packed rows: ``rows: (N, width) -> (N,) float32``."""

    layout: RowLayout
    head: EnergyHead
    name: str

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return score(self.name, self.layout.unpack(rows), self.head)


def regression_score(name: str, layout: RowLayout, head: EnergyHead) -> RegressionScore:
    if name not in SCORES:
        raise ValueError(f"a regressor router serves one of {SCORES}, not {name!r}")
    return RegressionScore(layout, head, name)


def packed_regression_score(name: str, context: ScoreContext) -> RegressionScore:
    """The ``ScoreFactory`` of ``SCORES``: on the rows of the router's ``stage_layout``, read
    with the energy head its parameters describe."""
    layout = RowLayout.from_json(context.parameters.get(LAYOUT_PARAMETER, ""))
    return regression_score(name, layout, EnergyHead.from_parameters(context.parameters))


SCORE_FACTORIES: dict[str, ScoreFactory] = dict.fromkeys(SCORES, packed_regression_score)
