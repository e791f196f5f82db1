"""Reflex state classes: thin; they hold what the screen shows and call services."""
