"""The built-in model types pass the contract shipped for plugins, through the same door:
each is looked up by name in the entry-point registry, as a plugin would be."""

from __future__ import annotations

import pytest

from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.testing.model_type_contract import ModelTypeContract


class TestXGBoostContract(ModelTypeContract):
    @pytest.fixture
    def model_type(self):
        return get_model_type("xgb")


# A 300-tree forest per fit makes this class the slowest contract run (about 10 s); rf's
# safe payload stays in the quick subset through test_device_and_builtins.
@pytest.mark.slow
class TestRandomForestContract(ModelTypeContract):
    @pytest.fixture
    def model_type(self):
        return get_model_type("rf")


class TestLightGBMContract(ModelTypeContract):
    @pytest.fixture
    def model_type(self):
        return get_model_type("lgb")
