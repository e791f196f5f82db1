"""The kanban board: columns per process stage with SQL counts/sums, draggable cards."""
from __future__ import annotations

import reflex as rx

from rxcrm.state.work import BoardColumn, Card, WorkState

from . import theme
from .dnd import kanban_board, kanban_card, kanban_column


def _pill(value, color: str, bg: str, title: str, testid: str) -> rx.Component:
    return rx.cond(
        value > 0,
        rx.tooltip(
            rx.box(value, color=color, background=bg, font_size="11px", font_weight="600",
                   padding_x="6px", border_radius="8px", line_height="18px", data_testid=testid),
            content=title,
        ),
        rx.fragment(),
    )


def _card(card: Card) -> rx.Component:
    href = "/" + WorkState.page + "/" + card.id.to_string()
    return kanban_card(
        rx.box(
            rx.vstack(
                rx.hstack(
                    rx.link(card.title, href=href, weight="medium", size="2", color="#1f5fa8",
                            underline="hover", data_testid="card-title"),
                    rx.cond(card.repeat,
                            rx.tooltip(rx.badge("Повт.", color_scheme="orange", size="1", variant="soft"),
                                       content=rx.cond(WorkState.entity == "lead", "Повторный лид",
                                                       "Повторная сделка"))),
                    justify="between", align="start", width="100%", spacing="2",
                ),
                rx.cond(card.client != "", rx.text(card.client, size="1", color=theme.TEXT_MUTED)),
                rx.text(card.amount, size="2", weight="bold", color="#1f2933"),
                rx.divider(margin_y="2px"),
                rx.hstack(
                    rx.cond(
                        card.activity != "",
                        rx.hstack(
                            rx.icon("calendar-clock", size=13,
                                    color=rx.cond(card.overdue, theme.DANGER, theme.TEXT_MUTED)),
                            rx.text(card.activity_at, size="1",
                                    color=rx.cond(card.overdue, theme.DANGER, theme.TEXT_MUTED),
                                    weight=rx.cond(card.overdue, "medium", "regular")),
                            spacing="1", align="center", title=card.activity,
                        ),
                        rx.badge("нет дел", color_scheme="red", variant="soft", size="1"),
                    ),
                    rx.spacer(),
                    rx.text(card.responsible, size="1", color=theme.TEXT_MUTED, trim="both",
                            max_width="120px", overflow="hidden", white_space="nowrap",
                            text_overflow="ellipsis"),
                    width="100%", align="center",
                ),
                spacing="1", align="start", width="100%",
            ),
            background="white",
            border=f"1px solid {theme.BORDER}",
            border_radius="8px",
            padding="10px 12px",
            box_shadow="0 1px 2px rgba(16,24,40,0.04)",
            _hover={"border_color": "#b8c4d2"},
            cursor="grab",
        ),
        draggable_id=card.id.to_string(),
        index=0,
        data_testid="kanban-card",
        data_id=card.id,
    )


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
                _pill(col.overdue, "white", theme.DANGER, "Просроченные дела", "column-overdue"),
                _pill(col.today, "#7a4b00", "#ffe3a3", "Дела на сегодня", "column-today"),
                _pill(col.none, "#4a5563", "#e6e9ee", "Без запланированных дел", "column-none"),
                spacing="1", align="center", width="100%", padding_top="4px",
            ),
            border_top=f"4px solid {col.color}",
            background="white",
            border_radius="8px",
            padding="10px 12px",
            width="100%",
            box_shadow="0 1px 2px rgba(16,24,40,0.05)",
        ),
        kanban_column(
            rx.foreach(col.cards, _card),
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
            rx.button("Показать ещё", variant="ghost", size="1", width="100%",
                      on_click=WorkState.load_more(col.id), data_testid="load-more"),
        ),
        width="280px",
        min_width="280px",
        spacing="2",
        align="start",
    )


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
    )
