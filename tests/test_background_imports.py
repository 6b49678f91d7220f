"""Imports a run needs after its fit are started in a background thread while it fits."""

from __future__ import annotations

import subprocess
import sys

from marketpredictor_train.pipelines.common import EVALUATION_MODULES, REPORT_MODULES

CHILD = """
import sys, time
from marketpredictor_train.pipelines.common import import_in_background
names = sys.argv[1:]
assert not any(n in sys.modules for n in names)
import_in_background(["no_such_module_here", *names])  # a failure stops only the thread
import_in_background(names)
deadline = time.monotonic() + 60
while not all(n in sys.modules for n in names) and time.monotonic() < deadline:
    time.sleep(0.01)
print(all(n in sys.modules for n in names))
"""


def test_modules_are_imported_in_the_background_and_a_missing_one_raises_nothing():
    names = ["tabnanny", "filecmp"]  # standard modules nothing here imports
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *names], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_the_named_modules_exist():
    import importlib.util

    for name in (*EVALUATION_MODULES, *REPORT_MODULES):
        assert importlib.util.find_spec(name) is not None, name


def test_every_built_in_model_type_names_the_library_its_fit_imports():
    import importlib.util

    from marketpredictor_train.models.registry import get_model_type

    for name, module in (("xgb", "xgboost"), ("lgb", "lightgbm"), ("rf", "sklearn.ensemble")):
        modules = get_model_type(name).library_modules
        assert module in modules, (name, modules)
        assert all(importlib.util.find_spec(m) is not None for m in modules)
