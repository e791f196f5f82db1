"""A table that turns into cards on a phone (CSS only, one DOM: the desktop keeps its table).

`table_as_cards(cells)` is the `style` of an `rx.table.root`: below 768 px the head hides,
each row becomes a white card and `cells` places the cells in it (CSS per cell selector,
e.g. a grid area). Radix's table root is a scroll area whose inner box is laid out at the
table's width, and its table has `height: 0` — both are undone here."""
from __future__ import annotations

from . import theme

CARD = {"background": "white", "border": f"1px solid {theme.BORDER}", "borderRadius": "10px",
        "boxShadow": "0 1px 2px rgba(16,24,40,0.04)", "--table-row-box-shadow": "none"}
CELL = {"padding": "0", "maxWidth": "none", "height": "auto", "minHeight": "0", "boxShadow": "none"}


def table_as_cards(row: dict, cells: dict, cell: dict | None = None) -> dict:
    """`row`: the card's own CSS (display, grid, padding…); `cells`: selector → CSS for the
    cells inside a card; `cell`: CSS every cell gets."""
    return {theme.PHONE: {
        "border": "none", "background": "transparent", "backdropFilter": "none", "borderRadius": "0",
        "& .rt-ScrollAreaViewport > div": {"display": "block !important", "minWidth": "0 !important",
                                           "width": "100%"},
        "& .rt-TableRootTable": {"display": "block", "height": "auto", "overflow": "visible", "borderRadius": "0"},
        "& thead": {"display": "none"},
        "& tbody": {"display": "flex", "flexDirection": "column", "gap": "8px"},
        "& tbody > tr": {**CARD, **row},
        "& tbody > tr > td": {**CELL, **(cell or {})},
        **cells,
    }}


# a phone: cells keep their text on one line and the table scrolls sideways in its box
NOWRAP_TABLE = theme.phone(**{"& .rt-TableCell, & .rt-TableColumnHeaderCell": {"white_space": "nowrap"}})
# a phone: a table with long texts keeps a readable width and scrolls sideways in its box
WIDE_TABLE = theme.phone(**{"& .rt-TableRootTable": {"min_width": "680px"}})
