from typing import Any

LEAVES: int
BRANCH_LEQ: int
BRANCH_LT: int

def kernels() -> tuple[str, ...]:
    """The kernels this CPU runs (scalar, avx2, avx512), the last the one ``auto`` picks."""

class Forest:
    """A tree ensemble scored by QuickScorer's bit vectors, 16 rows a compare (AVX-512) or 8 (AVX2),
    up to four blocks of them a pass over the nodes."""

    n_features: int
    n_trees: int
    n_nodes: int

    def __init__(self, start: Any, split: Any, feature: Any, threshold: Any, mask: Any, leaves: Any,
                 n_features: int, base: float, logistic: bool, mode: int) -> None: ...
    def score(self, features: Any, out: Any, *, kernel: str = "auto") -> None:
        """Each row's score of a C-contiguous float32 ``[rows, n_features]`` matrix (NaN: missing)
        into the float32 vector ``out[rows]``."""
