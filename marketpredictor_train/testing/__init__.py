"""Test helpers shipped with mptrain for the authors of model-type plugins."""
