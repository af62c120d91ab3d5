"""The repository ``make bench`` serves: the default one plus the models measured beside it (the
Python-wrapped Student and Teacher, the router's no-work floor, the Teacher variants and the
three-stage router)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ebjr.build import model_config as mc
from ebjr.build.model_config import ModelServing
from ebjr.build.onnx_info import describe
from ebjr.build.repository import model_py_source, write_onnx_model
from ebjr.build.router_config import parse_stages, stages_parameter
from ebjr.core.layout import (
    ROUTER,
    STUDENT,
    STUDENT_CANDIDATES,
    TEACHER,
    VERSION,
    candidate_gate,
    config_path,
    middle_stage,
    onnx_path,
)
from ebjr.tasks.classification.repository import build_repository
from ebjr.training import data

PYTHON_WRAPPED = {"student": "student_python", "teacher": "teacher_python"}


FLOOR = "router_floor"


# The Teacher with both cores for its one instance: the headline compares the router with the
# faster of the two Teacher configs, measured in the same round.
TEACHER_2T = "teacher_2threads"


# A second Teacher cost for "when the cascade pays": the previous default Teacher's
# architecture (44 MFLOPs), a router that calls it instead of the default Teacher (same Student,
# same threshold, so the same Teacher share).
CHEAP_TEACHER = "teacher_44m"


CHEAP_ROUTER = "ebjr_router_44m"


# The default router with its Teacher over BLS (teacher_execution: bls) instead of in process
ROUTER_BLS = "ebjr_router_bls"


CHEAP_TEACHER_ONNX = STUDENT_CANDIDATES / "student_large_kd.onnx"


THREE_STAGE = "ebjr_three_stage"


# the three-stage router's models, renamed beside the default two-stage ones
THREE_STAGE_MODELS = {
    ROUTER: THREE_STAGE,
    STUDENT: "three_stage_1",
    middle_stage(1): "three_stage_2",
}


def bench_repository(repo: Path, dest: Path) -> Path:
    """``repo`` plus the models measured beside it: the Python-wrapped Student and Teacher
    (same ONNX files, ``--backend python``), ``router_floor`` (the router's config served by
    a model that does no work: ``ebjr.serving.floor``) and, for a two-stage ``repo`` whose
    ``metrics.json`` compared three stages, that three-stage router (``add_three_stage``)."""
    shutil.copytree(repo, dest)
    for native, wrapped in PYTHON_WRAPPED.items():
        onnx = onnx_path(repo, native)
        batch = mc.read(config_path(repo, native)).max_batch_size
        python = ModelServing(backend="python")
        write_onnx_model(dest, wrapped, onnx, describe(onnx), batch, python)
    (dest / FLOOR / VERSION).mkdir(parents=True)
    (dest / FLOOR / VERSION / "model.py").write_text(model_py_source("ebjr.serving.floor"))
    floor = mc.edited(mc.read(config_path(repo, ROUTER)), name=FLOOR)
    floor.ClearField("parameters")
    mc.write(config_path(dest, FLOOR), floor)
    add_teacher_variants(repo, dest)
    metrics = repo / "metrics.json"
    two_stage = "middle_stages" not in mc.parameters(mc.read(config_path(repo, ROUTER)))
    if two_stage and metrics.exists() and "three_stage" in json.loads(metrics.read_text()):
        add_three_stage(repo, dest)
    return dest


def add_teacher_variants(repo: Path, dest: Path) -> None:
    """``TEACHER_2T`` (the Teacher with 2 intra-op threads), ``CHEAP_TEACHER`` with
    ``CHEAP_ROUTER``, the default router calling it instead of the Teacher, and ``ROUTER_BLS``,
    the default router calling its Teacher over BLS."""
    teacher = mc.read(config_path(repo, TEACHER))
    shutil.copytree(repo / TEACHER, dest / TEACHER_2T)
    two = mc.edited(teacher, {"intra_op_thread_count": 2}, name=TEACHER_2T)
    mc.write(config_path(dest, TEACHER_2T), two)
    shutil.copytree(repo / TEACHER, dest / CHEAP_TEACHER)
    shutil.copyfile(CHEAP_TEACHER_ONNX, onnx_path(dest, CHEAP_TEACHER))
    mc.write(config_path(dest, CHEAP_TEACHER), mc.edited(teacher, name=CHEAP_TEACHER))
    router = mc.read(config_path(repo, ROUTER))
    for name, edits in (
        (CHEAP_ROUTER, {"teacher_model": CHEAP_TEACHER}),
        (ROUTER_BLS, {"teacher_execution": "bls"}),
    ):
        shutil.copytree(repo / ROUTER, dest / name)
        mc.write(config_path(dest, name), mc.edited(router, edits, name=name))


def add_three_stage(repo: Path, dest: Path) -> None:
    """The three-stage cascade ``make models`` compared (``metrics.json``'s ``three_stage``),
    written by the repository builder from the committed candidate Students and their gates,
    calibrated on validation, and served as ``THREE_STAGE`` beside the two-stage default (its
    Students renamed as ``THREE_STAGE_MODELS`` says)."""
    names = json.loads((repo / "metrics.json").read_text())["three_stage"]["stages"][:2]
    first, second = (STUDENT_CANDIDATES / f"{name}.onnx" for name in names)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_repository(
            first,
            onnx_path(repo, TEACHER),
            work,
            validation=data.load_split("val"),
            middle=(second,),
            gates=(candidate_gate(first), candidate_gate(second)),
        )
        for model, name in THREE_STAGE_MODELS.items():
            shutil.copytree(work / model, dest / name)
            config = mc.read(config_path(work, model))
            overrides = {}
            if model == ROUTER:
                ((_, image, logits),) = parse_stages(mc.parameters(config)["middle_stages"])
                second_stage = (THREE_STAGE_MODELS[middle_stage(1)], image, logits)
                overrides = {
                    "student_model": THREE_STAGE_MODELS[STUDENT],
                    "middle_stages": stages_parameter([second_stage]),
                }
            mc.write(config_path(dest, name), mc.edited(config, overrides, name=name))
