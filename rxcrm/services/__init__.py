"""Service layer: every business operation, in plain Python (no Reflex import)."""
