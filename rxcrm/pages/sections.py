"""Section pages of the navigation. Later issues replace the placeholders one by one."""
from __future__ import annotations

import reflex as rx

from rxcrm.components.shell import layout, placeholder
from rxcrm.state.app import AppState

# route -> (title key, hint key, icon)
SECTIONS = {
    "/leads": ("page.leads.title", "page.leads.hint", "filter"),
    "/deals": ("page.deals.title", "page.deals.hint", "handshake"),
    "/contacts": ("page.contacts.title", "page.contacts.hint", "contact"),
    "/companies": ("page.companies.title", "page.companies.hint", "building-2"),
    "/activities": ("page.activities.title", "page.activities.hint", "list-checks"),
    "/analytics": ("page.analytics.title", "page.analytics.hint", "chart-column"),
    "/history": ("page.history.title", "page.history.hint", "history"),
    "/settings": ("page.settings.title", "page.settings.hint", "settings"),
}


def section_page(route: str):
    title_key, hint_key, icon = SECTIONS[route]

    def page() -> rx.Component:
        return layout(route, AppState.t[title_key], placeholder(hint_key, icon))

    page.__name__ = "page_" + route.strip("/")
    return page


def index_page() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh")
