"""Reflex wrapper of tab_visibility.jsx: `tab_visibility(on_change=Handler)` calls the
handler with True / False when the browser tab is shown / hidden."""
from __future__ import annotations

import reflex as rx

_ASSET = rx.asset("tab_visibility.jsx", shared=True)


class TabVisibility(rx.Component):
    library = f"$/public{_ASSET}"
    tag = "TabVisibility"
    on_change: rx.EventHandler[lambda visible: [visible]]


tab_visibility = TabVisibility.create
