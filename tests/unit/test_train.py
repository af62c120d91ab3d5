"""The training machinery's bookkeeping, without training a model: checkpoints that resume
bit for bit, recipe keys, the Teacher's memo and the test-time flip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from onnx_factory import tiny_classifier
from torch import nn

from ebjr.build.onnx_info import describe
from ebjr.tasks.classification.train import TEACHER_RECIPE, MemoTeacher, export, most_accurate
from ebjr.training import models
from ebjr.training.fit import Checkpoint


def _parts(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    return model, optimizer, schedule, torch.Generator().manual_seed(seed)


def _steps(model, optimizer, schedule, generator, n: int) -> None:
    for _ in range(n):
        x = torch.rand(8, 4, generator=generator)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    straight = _parts()
    _steps(*straight, 10)

    first = _parts()
    _steps(*first, 4)
    saved = Checkpoint(tmp_path, "tiny", "k", "tiny")
    saved.save(2, 12.5, *first)
    assert not list(tmp_path.glob("*.partial"))  # written whole, then renamed
    resumed = _parts(seed=1)  # other weights and draws: all of it must come from the file
    assert saved.restore(*resumed) == (2, 12.5)
    _steps(*resumed, 6)
    for a, b in zip(straight[0].parameters(), resumed[0].parameters(), strict=True):
        assert torch.equal(a, b)


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert Checkpoint(tmp_path, "tiny", "k", "tiny").restore(*_parts()) == (0, 0.0)
    assert Checkpoint(None, "tiny", "k", "tiny").path is None


def test_the_checkpoint_key_changes_with_the_recipe_the_data_and_the_teacher():
    base = TEACHER_RECIPE.key("teacher", popular=None, teacher=None)
    assert base == TEACHER_RECIPE.key("teacher", popular=None, teacher=None)
    others = {
        replace(TEACHER_RECIPE, epochs=16).key("teacher", popular=None, teacher=None),
        TEACHER_RECIPE.key("student_large", popular=None, teacher=None),
        TEACHER_RECIPE.key("teacher", popular=(0, 1), teacher=None),
        TEACHER_RECIPE.key("teacher", popular=None, teacher="abc"),
        TEACHER_RECIPE.key("teacher", popular=None, teacher=None, seed=1),
    }
    assert base not in others and len(others) == 5


class Counting:
    """A Teacher that counts its calls."""

    def __init__(self, teacher) -> None:
        self.teacher, self.calls = teacher, 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.teacher(batch)


def test_the_teacher_answers_each_distinct_batch_once(tmp_path):
    path = tiny_classifier(tmp_path / "t.onnx", side=28, input_name="image")
    memo = MemoTeacher(path)
    memo.teacher = counting = Counting(memo.teacher)
    batch = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    first = memo(batch)
    assert np.array_equal(memo(batch.copy()), first) and counting.calls == 1
    assert not np.array_equal(memo(batch[::-1]), first) and counting.calls == 2
    # the key names the Teacher's file: another Teacher, another key
    other = tiny_classifier(tmp_path / "u.onnx", classes=4, side=28, input_name="image")
    assert MemoTeacher(path).key == memo.key != MemoTeacher(other).key


def test_the_flip_view_averages_the_mirrored_logits_at_twice_the_flops(tmp_path):
    torch.manual_seed(0)
    model = models.build("student").eval()
    export(model, tmp_path / "plain.onnx")
    export(models.FlipAverage(model), tmp_path / "flip.onnx")
    assert describe(tmp_path / "flip.onnx").flops == 2 * describe(tmp_path / "plain.onnx").flops
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(3))) / 2
        assert torch.allclose(models.FlipAverage(model)(x), expected)
    assert not models.FlipAverage(model).training  # export checks it in eval mode


def test_an_ensemble_averages_its_members_logits_at_the_sum_of_their_flops(tmp_path):
    torch.manual_seed(0)
    a, b = models.build("student").eval(), models.build("student").eval()
    export(a, tmp_path / "one.onnx")
    export(models.Ensemble([a, b]), tmp_path / "two.onnx")
    assert describe(tmp_path / "two.onnx").flops == 2 * describe(tmp_path / "one.onnx").flops
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(models.Ensemble([a, b])(x), (a(x) + b(x)) / 2)
    assert not models.Ensemble([a, b]).training


def test_the_most_accurate_candidate_on_val_wins_and_a_tie_goes_to_fewer_flops():
    candidates = {
        "cheap": {"val_accuracy": 0.94, "flops": 1},
        "best": {"val_accuracy": 0.95, "flops": 9},
        "tied": {"val_accuracy": 0.95, "flops": 5},
    }
    assert most_accurate(candidates) == "tied"
