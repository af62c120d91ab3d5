"""The Teacher candidate study (``make teacher-study``): which recipe ``make models`` trains.

    python -m ebjr.tasks.classification.teacher_study [--work build/models] \
        [--out evaluation/teacher_study.json]

Trains every recipe of ``CANDIDATES`` (checkpointed after each epoch, so a stopped study
resumes; an ensemble's first member is the single model's checkpoint), exports each in every
view of ``ebjr.tasks.classification.train.TEACHER_VIEWS`` (plain, and with a test-time flip)
and records val and test accuracy, FLOPs and training time. The most accurate on ``val`` is
the recipe ``make models`` trains (``ebjr.tasks.classification.train.TEACHER_RECIPE`` with
``TEACHER_MEMBERS`` seeds); ``test`` is reported, never used. ``make eval`` renders the file
into EVALUATION.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from ebjr.core.layout import TEACHER_STUDY
from ebjr.tasks.classification.train import TEACHER_RECIPE, Recipe, export_views, most_accurate

CANDIDATES: dict[
    str, tuple[str, Recipe, int]
] = {  # name: (architecture in ebjr.training.models, recipe, ensemble members)
    # the previous default Teacher: stride-2 stem, 8 epochs, plain cross-entropy
    "stride2_8ep": ("student_large", Recipe(epochs=8), 1),
    # a stride-1 stem (3.6x the FLOPs), Nesterov, label smoothing, 15 epochs
    "stride1_15ep": ("teacher", TEACHER_RECIPE, 1),
    # two of those from different seeds, their logits averaged
    "stride1_15ep_x2": ("teacher", TEACHER_RECIPE, 2),
}
log = logging.getLogger(__name__)


def study(work: Path) -> dict:
    """Train and measure every candidate; ``{"chosen", "by", "candidates": {name: {view:
    metrics}}}`` with the chosen one the best (val accuracy, then fewer FLOPs) of all views."""
    results = {
        name: export_views(
            architecture, recipe, work / "teacher_study" / name, work / "checkpoints", name, members
        )
        for name, (architecture, recipe, members) in CANDIDATES.items()
    }
    chosen = most_accurate({(n, v): m for n, views in results.items() for v, m in views.items()})
    return {"chosen": list(chosen), "by": "val_accuracy", "candidates": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/models"))
    parser.add_argument("--out", type=Path, default=TEACHER_STUDY)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    result = study(args.work)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    name, view = result["chosen"]
    print(f"Wrote {args.out}: the most accurate on val is {name} ({view})")


if __name__ == "__main__":
    main()
