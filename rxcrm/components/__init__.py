"""Reusable UI pieces (layout shell, cards, tables). They read state; no DB access."""
