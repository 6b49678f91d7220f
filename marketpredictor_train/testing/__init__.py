"""Test helpers shipped with mptrain: the model-type contract suite for plugin authors and
seeded synthetic OHLCV."""
