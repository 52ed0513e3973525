"""skl2onnx converters for LightGBM and XGBoost classifiers (onnxmltools), when installed.

``scorer models package model.joblib`` converts through skl2onnx's ``to_onnx`` (the
exporter training uses too, :mod:`scorer.lifecycle.export`): registering onnxmltools' converters lets
the same call, with the same options (no ZipMap, so the output stays the FP32
``probabilities`` [batch, 2] tensor), convert ``LGBMClassifier`` and ``XGBClassifier``.
Their parsers are skl2onnx's classifier parser, which honours ``zipmap: False``.

Optional: ``pip install '.[gbm]'``. Without it, those learners fail to convert with a
message that says so, and an ONNX file exported elsewhere can still be packaged.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

# (estimator module, class, onnxmltools converter module, converter function, alias)
_CONVERTERS = (
    ("lightgbm", "LGBMClassifier", "onnxmltools.convert.lightgbm.operator_converters.LightGbm",
     "convert_lightgbm", "LightGbmLGBMClassifier"),
    ("xgboost", "XGBClassifier", "onnxmltools.convert.xgboost.operator_converters.XGBoost",
     "convert_xgboost", "XGBoostXGBClassifier"),
)


@cache  # skl2onnx keeps registrations for the life of the process: once is enough
def register_gbm_converters() -> tuple[str, ...]:
    """Register what is installed; returns the estimator classes now convertible."""
    skl2onnx: Any = importlib.import_module("skl2onnx")
    shapes: Any = importlib.import_module("skl2onnx.common.shape_calculator")
    registered = []
    for module, cls, converter_module, converter, alias in _CONVERTERS:
        try:
            estimator = getattr(importlib.import_module(module), cls)
            convert = getattr(importlib.import_module(converter_module), converter)
        except ImportError:
            continue
        skl2onnx.update_registered_converter(
            estimator, alias, shapes.calculate_linear_classifier_output_shapes, convert,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
        registered.append(f"{module}.{cls}")
    return tuple(registered)
