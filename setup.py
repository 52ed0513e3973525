"""The hot path's native parts, scorer/native (everything else is declared in pyproject.toml).

C with the CPython API only (no NumPy headers), so the build needs nothing beyond a C
compiler. Not optional: a machine that installs the scorer builds it; a source tree without
it (the GPU device machine) runs the Python reference. Declared here rather than under
``[tool.setuptools.ext-modules]``, which setuptools still calls experimental and warns about
at every install.
"""

from setuptools import Extension, setup


def _module(name: str, libraries: tuple[str, ...] = ()) -> Extension:
    return Extension(f"scorer.native.{name}", sources=[f"scorer/native/{name}.c"], libraries=list(libraries),
                     depends=["scorer/native/_fields.h", "scorer/native/_murmur2.h", "scorer/native/_scorebuf.h",
                              "scorer/native/_fieldmap.h", "scorer/native/_bitmask.h", "scorer/native/_flat.h",
                              "scorer/native/_compat.h"],
                     extra_compile_args=["-O2", "-std=c11", "-Wall", "-Werror"])


# _native: the netflow and SIEM windows, the flow statistics; _edr: the EDR features' and the
# Sigma rule engine's per-row passes; _trees: the per-row loop over a tl2cgen-compiled tree
# library (dlopen: libdl, part of libc from glibc 2.34); _findings: an alert's OCSF finding
# written as JSON (scorer/alerts/findingjson.py); _rules: the Sigma rule engine's per-field pass;
# _kafka: the producer's placement and batch filling (scorer/kafka/producer.py); _forest: tree
# ensembles scored many rows at a time (scorer/inference/vectorized.py; AVX-512 and AVX2 kernels
# chosen at run time by the CPU, so one build serves every x86-64); _fieldmap: an EDR event's fields as a
# mapping over its record's bytes (scorer/events/edrrows.py; _fieldmap.h its C API for _edr and _rules).
setup(ext_modules=[_module("_native"), _module("_edr"), _module("_trees", ("dl",)), _module("_findings"),
                   _module("_rules"), _module("_kafka"), _module("_forest"), _module("_fieldmap")])
