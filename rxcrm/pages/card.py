"""Card pages: stage bar, field blocks, links (Связи), planned activities and the timeline."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.shell import layout
from rxcrm.state.card import Block, CardState, Event, LinkRow, Planned, StageChip

KIND_OPTIONS = [("all", "Все"), ("stage_changed", "Стадии"), ("field_changed", "Поля"), ("comment", "Комментарии"),
                ("activity_done", "Дела"), ("created", "Создание")]


def _stage(st: StageChip) -> rx.Component:
    filled = st.current | st.passed
    return rx.box(
        rx.text(st.name, size="1", weight=rx.cond(st.current, "bold", "regular"),
                color=rx.cond(filled, "white", "#4a5563"), white_space="nowrap", overflow="hidden",
                text_overflow="ellipsis"),
        background=rx.cond(filled, st.color, "#e9edf1"),
        padding="6px 10px", flex="1", min_width="0", text_align="center",
        border_radius="4px", data_testid="stage-chip", data_current=st.current.to_string(),
        title=st.name,
    )


def _block(b: Block) -> rx.Component:
    return rx.box(
        rx.text(b.title, weight="bold", size="2", color="#1f2933", padding_bottom="8px"),
        rx.foreach(
            b.fields,
            lambda f: rx.hstack(
                rx.text(f.label, size="1", color=theme.TEXT_MUTED, width="40%", min_width="120px"),
                rx.text(f.value, size="2", color="#1f2933", width="60%", word_break="break-word"),
                align="start", width="100%", padding_y="4px", border_bottom=f"1px dashed {theme.BORDER}",
            ),
        ),
        background="white", border=f"1px solid {theme.BORDER}", border_radius="10px", padding="14px 16px",
        width="100%",
    )


def _link(link: LinkRow) -> rx.Component:
    return rx.hstack(
        rx.badge(link.kind, variant="soft", color_scheme="gray", size="1"),
        rx.link(link.title, href=link.href, size="2", color="#1f5fa8"),
        spacing="2", align="center",
    )


def _planned(p: Planned) -> rx.Component:
    return rx.hstack(
        rx.icon("calendar-clock", size=15, color=rx.cond(p.overdue, theme.DANGER, theme.ACCENT)),
        rx.text(p.subject, size="2", weight="medium"),
        rx.spacer(),
        rx.text(p.at, size="1", color=rx.cond(p.overdue, theme.DANGER, theme.TEXT_MUTED)),
        width="100%", align="center", padding="8px 12px", background="#fff8e6", border="1px solid #f5dfa8",
        border_radius="8px", data_testid="planned-activity",
    )


def _event(e: Event) -> rx.Component:
    return rx.hstack(
        rx.box(width="8px", height="8px", border_radius="50%", background=theme.ACCENT, margin_top="7px",
               flex_shrink="0"),
        rx.vstack(
            rx.hstack(
                rx.text(e.label, size="1", weight="bold", color="#1f2933"),
                rx.text(e.at, size="1", color=theme.TEXT_MUTED),
                rx.text(e.who, size="1", color=theme.TEXT_MUTED),
                spacing="2", align="center", flex_wrap="wrap",
            ),
            rx.cond(e.text != "", rx.text(e.text, size="2", color="#2d3a48", white_space="pre-wrap")),
            spacing="1", align="start",
        ),
        spacing="3", align="start", width="100%", padding="8px 4px", border_bottom=f"1px solid {theme.BORDER}",
        data_testid="timeline-event", data_kind=e.kind,
    )


def _body() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.link(rx.hstack(rx.icon("arrow-left", size=15), rx.text(CardState.t["common.back"]), spacing="1",
                              align="center"),
                    href="/" + CardState.card_section, size="2", color=theme.TEXT_MUTED),
            rx.heading(CardState.card_title, size="5", data_testid="card-heading"),
            spacing="4", align="center",
        ),
        rx.cond(CardState.stages.length() > 0,
                rx.hstack(rx.foreach(CardState.stages, _stage), spacing="1", width="100%",
                          data_testid="stage-bar")),
        rx.hstack(
            rx.vstack(
                rx.foreach(CardState.blocks, _block),
                rx.cond(
                    CardState.card_links.length() > 0,
                    rx.box(
                        rx.text("Связи", weight="bold", size="2", padding_bottom="8px"),
                        rx.vstack(rx.foreach(CardState.card_links, _link), spacing="2", align="start"),
                        background="white", border=f"1px solid {theme.BORDER}", border_radius="10px",
                        padding="14px 16px", width="100%",
                    ),
                ),
                width="40%", min_width="340px", spacing="3",
            ),
            rx.vstack(
                rx.hstack(
                    rx.text("Лента", weight="bold", size="3"),
                    rx.spacer(),
                    rx.select.root(
                        rx.select.trigger(),
                        rx.select.content(*[rx.select.item(label, value=v) for v, label in KIND_OPTIONS]),
                        value=rx.cond(CardState.kind_filter == "", "all", CardState.kind_filter),
                        on_change=CardState.set_kind_filter, size="1",
                    ),
                    width="100%", align="center",
                ),
                rx.foreach(CardState.planned_items, _planned),
                rx.box(rx.foreach(CardState.events, _event), width="100%", data_testid="timeline"),
                rx.cond(CardState.events_more,
                        rx.button("Показать ещё", variant="ghost", size="1", on_click=CardState.more_events)),
                rx.cond(CardState.events.length() == 0,
                        rx.text("История пуста", size="2", color=theme.TEXT_MUTED)),
                flex="1", min_width="0", spacing="3", background="white", border=f"1px solid {theme.BORDER}",
                border_radius="10px", padding="14px 16px", align="start",
            ),
            spacing="4", align="start", width="100%",
        ),
        spacing="4", width="100%", align="start",
    )


def _error() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("shield-alert", size=32, color=theme.DANGER),
            rx.heading(CardState.card_error, size="4", data_testid="card-error"),
            rx.link(CardState.t["common.back"], href="/" + CardState.card_section),
            align="center", spacing="3", padding="48px", background="white", border_radius="12px",
            border=f"1px solid {theme.BORDER}",
        ),
        padding_top="48px", width="100%",
    )


def card_page(route: str):
    title_keys = {"/leads": "page.leads.title", "/deals": "page.deals.title", "/contacts": "page.contacts.title",
                  "/companies": "page.companies.title"}

    def page() -> rx.Component:
        return layout(route, CardState.t[title_keys[route]], rx.cond(CardState.card_error != "", _error(), _body()))

    page.__name__ = "card_" + route.strip("/")
    return page
