"""/leads, /deals (kanban + list), /contacts, /companies (list)."""
from __future__ import annotations

import reflex as rx


from rxcrm.components import theme
from rxcrm.components.board import board, stage_strip
from rxcrm.components.filterbar import missing_fields_dialog, toolbar
from rxcrm.components.import_wizard import import_wizard
from rxcrm.components.listview import empty_hint, list_view
from rxcrm.components.shell import layout, page_wait
from rxcrm.state.work import WorkState

TITLES = {"/leads": "page.leads.title", "/deals": "page.deals.title", "/contacts": "page.contacts.title",
          "/companies": "page.companies.title"}


KANBAN_H_PHONE = f"calc(100dvh - {theme.TOPBAR_H} - 2 * {theme.PAGE_PAD_PHONE})"


def work_page(route: str):
    def page() -> rx.Component:
        # what the state holds belongs to this page only after its on_load: a tab coming from
        # /leads must not show the leads' board under /deals for a moment (a quick click
        # would open a lead as /deals/<id>)
        return layout(
            route,
            WorkState.t[TITLES[route]],
            rx.cond(
                WorkState.page == route.strip("/"),
                _surface(),
                page_wait(),
            ),
        )

    page.__name__ = "work_" + route.strip("/")
    return page


def _surface() -> rx.Component:
    """The toolbar and the board or the list of the current page."""
    return rx.vstack(
        toolbar(),
        rx.cond(WorkState.error != "",
                rx.callout(WorkState.error, icon="triangle-alert", color_scheme="red", size="1",
                           data_testid="work-error")),
        rx.cond(WorkState.is_kanban,
                rx.fragment(rx.cond(WorkState.empty_title != "", empty_hint(compact=True)), stage_strip(), board()),
                list_view()),
        missing_fields_dialog(),
        import_wizard(),
        spacing=rx.breakpoints(initial="3", sm="4"),
        width="100%",
        align="start",
        # on a phone the board fills the screen under the toolbar and scrolls by itself
        style=theme.phone(height=rx.cond(WorkState.is_kanban, KANBAN_H_PHONE, "auto"),
                          **{"& > *": {"flex_shrink": "0"}, "& > [data-testid='kanban']": {"flex_shrink": "1"}}),
    )


ROUTES = list(TITLES)

