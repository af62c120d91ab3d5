"""Every routing score a served router can name, in one registry: a classifier's closed-form
scores and learned gate (``ebjr.core.gate.ROUTING_SCORES``), the detection terms
(``ebjr.tasks.detection.scores``) and the regression energies (``ebjr.tasks.regression.scores``),
each built for its router by a ``ScoreFactory``."""

from ebjr.core.gate import ROUTING_SCORES
from ebjr.core.scores import ScoreFactory
from ebjr.tasks.detection.scores import SCORE_FACTORIES as DETECTION
from ebjr.tasks.regression.scores import SCORE_FACTORIES as REGRESSION

SCORES: dict[str, ScoreFactory] = {**ROUTING_SCORES, **DETECTION, **REGRESSION}
