"""What the packages beside the core add to it, found through entry points.

The core imports none of models/, replay/ or streams/: they import it. Where the core
offers something they complete, they declare it in their distribution's metadata
(``[project.entry-points]`` in pyproject.toml) and the core looks it up by group:

- ``scorer.commands``: ``register(subparsers)``, more ``scorer`` subcommands (replay's
  ``replay``, ``record`` and ``eval``);
- ``scorer.training_data``: ``(kind, feature_set) -> rows`` with ``X``, ``y`` and ``group``
  arrays, the labelled rows golden sets are drawn from when a version carries none (the
  training readers of models/).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

COMMANDS = "scorer.commands"
TRAINING_DATA = "scorer.training_data"

RegisterCommands = Callable[[Any], None]  # argparse's subparsers action (a private class)


class TrainingRows(Protocol):
    """Labelled feature rows of one kind, in one feature set."""

    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int8]
    group: npt.NDArray[np.str_]  # the split group of each row (capture, host, scenario)


TrainingData = Callable[[str, str], TrainingRows]  # (kind, feature set) -> rows


def command_registrars() -> list[RegisterCommands]:
    """Every installed ``scorer.commands`` entry, in name order (a stable ``--help``)."""
    return [ep.load() for ep in sorted(entry_points(group=COMMANDS), key=lambda ep: ep.name)]


def training_data() -> TrainingData | None:
    """The installed training-data reader, or None (then golden sets must be given)."""
    found = sorted(entry_points(group=TRAINING_DATA), key=lambda ep: ep.name)
    reader: TrainingData | None = found[0].load() if found else None
    return reader


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for register in command_registrars():
        register(subparsers)
