"""The hot path's native part, scorer/native (everything else is declared in pyproject.toml).

C with the CPython API only (no NumPy headers), so the build needs nothing beyond a C
compiler. Not optional: a machine that installs the scorer builds it; a source tree without
it (the GPU device machine) runs the Python reference. Declared here rather than under
``[tool.setuptools.ext-modules]``, which setuptools still calls experimental and warns about
at every install.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scorer.native._native",
            sources=["scorer/native/_native.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Werror"],
        )
    ]
)
