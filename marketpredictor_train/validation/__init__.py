"""Honest validation: chronological splits with a purge gap, metrics, the promotion gate."""
