"""Fixtures of the training tests: the seconds-long TINY recipe trained for real, once per session."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

# Every test here needs torch (the model, or fixtures built on it): without it the whole folder skips, with the reason.
if importlib.util.find_spec("torch") is None:
    pytest.skip(
        "the training tests need torch, which is not installed: pip install -e '.[local]' (`make test` installs it)",
        allow_module_level=True,
    )

import torch

from agentkit.training.loop import Trainer
from agentkit.training.recipe import TINY, Recipe


def train(recipe: Recipe, run_dir: Path, stop_after: int | None = None) -> Path | None:
    """A real training run with one thread (so runs compare bit for bit whatever the machine's core count)."""
    threads = torch.get_num_threads()
    try:
        return Trainer(recipe, run_dir, threads=1, progress=False, log=lambda _: None).run(stop_after)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def run_training() -> Callable[..., Path | None]:
    """`run_training(recipe, run_dir, stop_after=None)`: a real training run (see `train`)."""
    return train


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of an uninterrupted TINY run (its checkpoint/ holds the trained model)."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    train(TINY, run_dir)
    return run_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is a `torch` test (`-m "not torch"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.torch)
