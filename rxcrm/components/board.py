"""The kanban board: columns per process stage with SQL counts/sums, draggable cards.

On a phone (below 768 px) the board fills the screen under the toolbar and scrolls by itself:
sideways one column at a time (scroll-snap, each column ~85 % of the width, the next one
peeking), down within the board with each column's head (stage, count, sum) kept on top.
A strip of the stages above jumps to a column; each card has a «Сменить стадию» menu (the
same version-checked move as a drop), and a long press drags a card (the library's touch
sensor; snapping pauses while a card is dragged)."""
from __future__ import annotations

import reflex as rx

from rxcrm.state.work import BoardColumn, Card, WorkState

from . import theme
from .dnd import kanban_board, kanban_card, kanban_column


def _pill(value, color: str, bg: str, title, testid: str) -> rx.Component:
    return rx.cond(
        value > 0,
        rx.tooltip(
            rx.box(value, color=color, background=bg, font_size="11px", font_weight="600",
                   padding_x="6px", border_radius="8px", line_height="18px", data_testid=testid),
            content=title,
        ),
        rx.fragment(),
    )


def _stage_menu(card: Card, col: BoardColumn) -> rx.Component:
    """«Сменить стадию» on a card (phones): a native select over a ⋮ glyph (the phone's own
    picker) listing the board's other stages; a choice is the same move as a drop
    (WorkState.on_drag_end with the card's version: required fields, refusals and conflicts
    are handled alike). It stays empty (`value=""`), so the same stage can be chosen again
    after a refusal. Hidden from 768 px up (assets/board.css)."""
    return rx.el.span(
        "⋮",
        rx.el.select(
            rx.el.option(WorkState.t["board.change_stage"], value="", disabled=True),
            rx.foreach(
                WorkState.board,
                lambda st: rx.cond(
                    st.id != col.id,
                    rx.el.option(st.name, value=st.id.to_string(), data_testid="card-stage-item",
                                 data_stage=st.name),
                ),
            ),
            value="",
            on_change=lambda to: WorkState.on_drag_end({"draggableId": card.id, "from": col.id, "to": to}),
            aria_label=WorkState.t["board.change_stage"],
            title=WorkState.t["board.change_stage"],
            data_testid="card-stage-menu",
        ),
        class_name="kb-menu",
    )


def _card(card: Card, col: BoardColumn) -> rx.Component:
    """A card: plain elements styled by assets/board.css (a board renders a hundred of
    them: no per-element style objects, no icon components, native title tooltips)."""
    href = "/" + WorkState.page + "/" + card.id.to_string()
    return kanban_card(
        rx.el.div(
            rx.el.div(
                rx.link(card.title, href=href, class_name="kb-title", data_testid="card-title"),
                rx.cond(card.repeat,
                        rx.el.span(WorkState.t["work.card.repeat"], class_name="kb-badge kb-orange",
                                   title=rx.cond(WorkState.entity == "lead", WorkState.t["work.card.repeat.lead"],
                                                 WorkState.t["work.card.repeat.deal"]))),
                _stage_menu(card, col),
                class_name="kb-head",
            ),
            rx.cond(card.client != "", rx.el.div(card.client, class_name="kb-client")),
            rx.el.div(card.amount, class_name="kb-amount"),
            rx.el.div(class_name="kb-rule"),
            rx.el.div(
                rx.cond(
                    card.activity != "",
                    rx.el.span(rx.el.span(class_name="kb-ico-cal"), card.activity_at,
                               class_name=rx.cond(card.overdue, "kb-when kb-overdue", "kb-when"),
                               title=card.activity),
                    rx.el.span(WorkState.t["work.card.no_activity"], class_name="kb-badge kb-red"),
                ),
                rx.el.span(card.responsible, class_name="kb-resp", title=card.responsible),
                class_name="kb-foot",
            ),
            class_name=rx.cond(WorkState.saving_id == card.id, "kb-card kb-saving", "kb-card"),
        ),
        draggable_id=card.id.to_string(),
        index=0,
        data_testid="kanban-card",
        data_id=card.id,
    )


# on a phone: one column ≈ 85 % of the screen, the next one peeking at the right edge
COLUMN_W_PHONE = "calc(100vw - 60px)"


def _column(col: BoardColumn) -> rx.Component:
    return rx.vstack(
        rx.box(
            rx.hstack(
                rx.text(col.name, weight="bold", size="2", color="#1f2933", trim="both"),
                rx.badge(col.count, variant="soft", color_scheme="gray", radius="full",
                         data_testid="column-count"),
                justify="between", align="center", width="100%",
            ),
            rx.hstack(
                rx.text(col.amount, size="2", color="#3c4a5a", weight="medium", data_testid="column-sum"),
                rx.spacer(),
                _pill(col.overdue, "white", theme.DANGER, WorkState.t["work.column.overdue"], "column-overdue"),
                _pill(col.today, "#7a4b00", "#ffe3a3", WorkState.t["work.column.today"], "column-today"),
                _pill(col.none, "#4a5563", "#e6e9ee", WorkState.t["work.column.none"], "column-none"),
                spacing="1", align="center", width="100%", padding_top="4px",
            ),
            border_top=f"4px solid {col.color}",
            background="white",
            border_radius="8px",
            padding="10px 12px",
            width="100%",
            box_shadow="0 1px 2px rgba(16,24,40,0.05)",
            data_testid="column-head",
            # the head stays on top while the column scrolls under it (the page background
            # above it hides the cards passing by)
            style=theme.phone(position="sticky", top="0", z_index="2",
                              box_shadow=f"0 -10px 0 {theme.PAGE_BG}, 0 1px 3px rgba(16,24,40,0.10)"),
        ),
        kanban_column(
            rx.foreach(col.cards, lambda c: _card(c, col)),
            rx.cond(
                col.count == 0,
                rx.center(
                    rx.text(WorkState.column_empty_text, size="2", color="#98a2b3"),
                    border="1px dashed #d5dbe3", border_radius="8px", height="64px", width="100%",
                    data_testid="column-empty",
                ),
            ),
            droppable_id=col.id.to_string(),
            width="100%",
            data_testid="kanban-column",
            data_stage=col.name,
        ),
        rx.cond(
            col.has_more,
            rx.button(WorkState.t["work.column.more"], variant="ghost", size="1", width="100%",
                      on_click=WorkState.load_more(col.id), data_testid="load-more"),
        ),
        width="280px",
        min_width="280px",
        spacing="2",
        align="start",
        id="board-col-" + col.id.to_string(),
        data_testid="board-column",
        style=theme.phone(width=COLUMN_W_PHONE, min_width=COLUMN_W_PHONE, scroll_snap_align="start"),
    )


def _jump(col: BoardColumn) -> rx.Component:
    script = ("document.getElementById('board-col-" + col.id.to_string()
              + "')?.scrollIntoView({behavior: 'smooth', inline: 'start', block: 'nearest'})")
    return rx.button(
        rx.box(width="8px", height="8px", border_radius="50%", background=col.color, flex_shrink="0"),
        rx.text(col.name, white_space="nowrap"),
        rx.text(col.count, color=theme.TEXT_MUTED, weight="medium"),
        variant="surface", color_scheme="gray", size="1", radius="full", flex_shrink="0",
        on_click=rx.call_script(script), data_testid="board-stage-jump",
    )


def stage_strip() -> rx.Component:
    """On a phone: the board's stages in a row above it; a tap brings that column."""
    return rx.hstack(
        rx.foreach(WorkState.board, _jump),
        spacing="2", width="100%", overflow_x="auto", padding_bottom="2px", flex_shrink="0",
        data_testid="board-stages",
        **theme.desktop_hidden(scrollbar_width="none"),
    )


# The phone board: its own scroller (both ways) that fills the screen under the toolbar;
# sideways it snaps to a column, except while a card is being dragged (the library scrolls
# it then, in small steps that snapping would undo).
_BOARD_PHONE = {
    "overflow": "auto",
    "flex": "1 1 auto",
    "minHeight": "0",
    "scrollSnapType": "x mandatory",
    "overscrollBehaviorX": "contain",
    "paddingBottom": "12px",
    "&:has([data-board-dragging='true'])": {"scrollSnapType": "none"},
}


def board() -> rx.Component:
    return rx.box(
        kanban_board(
            rx.hstack(rx.foreach(WorkState.board, _column), spacing="3", align="start"),
            on_drag_end=WorkState.on_drag_end,
        ),
        overflow_x="auto",
        padding_bottom="16px",
        width="100%",
        data_testid="kanban",
        style={theme.PHONE: _BOARD_PHONE},
    )
