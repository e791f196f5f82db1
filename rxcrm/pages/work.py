"""/leads, /deals (kanban + list), /contacts, /companies (list)."""
from __future__ import annotations

import reflex as rx


from rxcrm.components.board import board
from rxcrm.components.filterbar import missing_fields_dialog, toolbar
from rxcrm.components.listview import empty_hint, list_view
from rxcrm.components.shell import layout
from rxcrm.state.work import WorkState

TITLES = {"/leads": "page.leads.title", "/deals": "page.deals.title", "/contacts": "page.contacts.title",
          "/companies": "page.companies.title"}


def work_page(route: str):
    def page() -> rx.Component:
        return layout(
            route,
            WorkState.t[TITLES[route]],
            rx.vstack(
                toolbar(),
                rx.cond(WorkState.error != "",
                        rx.callout(WorkState.error, icon="triangle-alert", color_scheme="red", size="1",
                                   data_testid="work-error")),
                rx.cond(WorkState.is_kanban,
                        rx.fragment(rx.cond(WorkState.empty_title != "", empty_hint(compact=True)), board()),
                        list_view()),
                missing_fields_dialog(),
                spacing="4",
                width="100%",
                align="start",
            ),
        )

    page.__name__ = "work_" + route.strip("/")
    return page


ROUTES = list(TITLES)

