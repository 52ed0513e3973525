from collections.abc import Sized
from typing import Any

import numpy as np
import numpy.typing as npt

class Windows(Sized):
    """Bounded per-entity sliding windows: kind 0 netflow sources, kind 1 SIEM hosts."""

    def __init__(self, kind: int, max_entities: int, window_s: float, max_window: int,
                 max_rules: int = 1, never_s: float = 0.0) -> None: ...
    def rows(self, keys: list[Any], ts: list[Any], a: list[Any], b: list[Any] | None,
             out: npt.NDArray[np.float64], /) -> None: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
