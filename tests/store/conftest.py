"""Model-store fixtures: a store in the test's working directory and real saved versions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import make_manifest, payload_for

from marketpredictor_train.store import ModelStore, StoredModel


@pytest.fixture
def models_dir(_isolated: Path) -> Path:
    return _isolated / "models"


@pytest.fixture
def store(models_dir: Path) -> ModelStore:
    return ModelStore(models_dir)


@pytest.fixture
def save_models(store: ModelStore) -> Callable[[int], list[StoredModel]]:
    """Save ``n`` versions (oldest first), each with its own payload and accuracy."""

    def save(n: int) -> list[StoredModel]:
        return [
            store.save(make_manifest(accuracy=0.50 + i / 100), payload_for(i)) for i in range(n)
        ]

    return save
