from typing import Any

class Trees:
    """A tl2cgen-compiled tree library (scorer.inference.compiled_build), opened with dlopen."""

    n_features: int
    n_outputs: int

    def __init__(self, path: str) -> None: ...
    def score(self, features: Any, out: Any, /) -> None:
        """P(malicious) of each row of a C-contiguous float32 ``[rows, n_features]`` matrix
        (NaN: missing) into the float32 vector ``out[rows]``."""
