"""Reflex wrappers of assets/kanban_dnd.jsx (@hello-pangea/dnd 18)."""
from __future__ import annotations

import reflex as rx

_ASSET = rx.asset("kanban_dnd.jsx", shared=True)
_LIB = "@hello-pangea/dnd@18.0.1"


class _Dnd(rx.Component):
    """Imported with the page (not lazily on first render, as a NoSSRComponent would be: the
    board's first cards then waited for one more download and evaluation after the data
    had arrived). The library renders on the server too (it resets its ids per render)."""

    library = f"$/public{_ASSET}"
    lib_dependencies: list[str] = [_LIB]


class KanbanBoard(_Dnd):
    tag = "KanbanBoard"
    on_drag_end: rx.EventHandler[lambda e: [e]]


class KanbanColumn(_Dnd):
    tag = "KanbanColumn"
    droppable_id: rx.Var[str]
    is_drop_disabled: rx.Var[bool]


class KanbanCard(_Dnd):
    tag = "KanbanCard"
    draggable_id: rx.Var[str]
    index: rx.Var[int]


kanban_board = KanbanBoard.create
kanban_column = KanbanColumn.create
kanban_card = KanbanCard.create
