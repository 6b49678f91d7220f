"""Promotion only replaces the champion a run compared itself with: a concurrent run that
promoted meanwhile is never silently overwritten."""

from __future__ import annotations

import pytest

from marketpredictor_train.store import ProductionChanged


def test_promote_with_the_expected_champion_succeeds(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="first", expected_production=None)
    store.promote(b.version, reason="beat a", expected_production=a.version)
    assert store.production().version == b.version


def test_promote_refuses_when_production_changed_meanwhile(store, save_models):
    a, b, c = save_models(3)
    store.promote(a.version, reason="first")
    store.promote(b.version, reason="a concurrent run won")
    before = store.prod_path.read_bytes()
    with pytest.raises(ProductionChanged) as info:
        store.promote(c.version, reason="beat a", expected_production=a.version)
    assert b.version in str(info.value)
    assert store.prod_path.read_bytes() == before
    assert [r.to_version for r in store.history()] == [a.version, b.version]


def test_promote_expecting_no_production_refuses_once_there_is_one(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="first")
    with pytest.raises(ProductionChanged):
        store.promote(b.version, reason="thought it was first", expected_production=None)
