"""The training loop every task shares: AdamW or SGD steps under a one-cycle schedule with a
progress bar (``fit``, ``take_step``), and per-epoch checkpoints that resume bit for bit
(``Checkpoint``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """The training state of one model after each epoch, in ``folder/{name}-{key}.pt``
    (no folder: nothing is saved). ``key`` names the architecture, recipe and data, so a
    changed recipe starts over; ``label`` is for the log."""

    folder: Path | None
    name: str
    key: str
    label: str

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder / f"{self.name}-{self.key}.pt"

    def restore(self, model, optimizer, schedule, generator: torch.Generator) -> tuple[int, float]:
        """Load the saved state into the arguments; return the epochs already done and the
        seconds they took (0, 0.0: nothing saved)."""
        if self.path is None or not self.path.exists():
            return 0, 0.0
        state = torch.load(self.path, weights_only=True)  # tensors and plain data only
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        log.info("%s: resumed after epoch %d from %s", self.label, state["epoch"], self.path)
        return int(state["epoch"]), float(state["seconds"])

    def save(
        self, epoch: int, seconds: float, model, optimizer, schedule, generator: torch.Generator
    ) -> None:
        """Write the state after ``epoch`` (atomically: a killed run leaves the last one)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": epoch,
            "seconds": seconds,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        partial = self.path.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.path)


def fit(
    model: nn.Module,
    rows: int,
    epochs: int,
    batch_size: int,
    lr: float,
    loss: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    label: str,
) -> nn.Module:
    """Train ``model`` with AdamW and a one-cycle schedule for ``epochs`` passes over ``rows``
    examples in ``generator``'s shuffled order; ``loss(batch_rows)`` is the loss of one batch
    (its row indices). Returns the model in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (rows // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(rows, generator=generator)
        progress = tqdm(range(rows // batch_size), desc=f"{label} epoch {epoch + 1}/{epochs}")
        for step in progress:
            batch = order[step * batch_size : (step + 1) * batch_size]
            take_step(loss(batch), optimizer, schedule, progress, step)
    return model.eval()


def take_step(loss, optimizer, schedule, progress, step: int) -> None:
    """One optimiser and schedule step on ``loss``; the loss on the progress bar every 50."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
    if step % 50 == 0:
        progress.set_postfix(loss=f"{loss.item():.3f}")
