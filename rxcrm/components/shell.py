"""The app shell: left navigation with counters, top bar (search, bell, user menu).

The counters and the bell come from AppState (`refresh_badges`: every page load, every
minute through `badges_timer`, and after changes that other states report)."""
from __future__ import annotations

import reflex as rx

from rxcrm import i18n
from rxcrm.state.app import AppState, NotificationRow
from rxcrm.state.search import SearchGroup, SearchHit, SearchState

from . import theme
from .visibility import tab_visibility

NAV = [
    # (catalog key, route, lucide icon, counter key)
    ("nav.leads", "/leads", "filter", "leads"),
    ("nav.deals", "/deals", "handshake", "deals"),
    ("nav.contacts", "/contacts", "contact", ""),
    ("nav.companies", "/companies", "building-2", ""),
    ("nav.activities", "/activities", "list-checks", "activities"),
    ("nav.analytics", "/analytics", "chart-column", ""),
    ("nav.history", "/history", "history", ""),
    ("nav.settings", "/settings", "settings", ""),
]


def _counter(key: str) -> rx.Component:
    if not key:
        return rx.fragment()
    value = AppState.counters[key]
    return rx.cond(
        value > 0,
        rx.box(value, background=theme.DANGER, color="white", font_size="11px", font_weight="600",
               padding_x="7px", border_radius="10px", line_height="18px", min_width="20px",
               text_align="center", data_testid=f"nav-counter-{key}"),
        rx.fragment(),
    )


def _nav_item(key: str, route: str, icon: str, counter: str, active: str) -> rx.Component:
    is_active = route == active
    return rx.link(
        rx.hstack(
            rx.icon(icon, size=18, color="white" if is_active else theme.SIDEBAR_TEXT),
            rx.text(AppState.t[key], size="2", weight="medium",
                    color="white" if is_active else theme.SIDEBAR_TEXT, flex="1"),
            _counter(counter),
            align="center", spacing="3", width="100%",
        ),
        href=route,
        underline="none",
        padding_x="14px",
        padding_y="9px",
        border_radius="8px",
        background=theme.SIDEBAR_ACTIVE if is_active else "transparent",
        _hover={"background": theme.SIDEBAR_ACTIVE},
        width="100%",
        data_testid="nav-item",
        data_route=route,
    )


def _nav_body(active: str, in_drawer: bool = False) -> list[rx.Component]:
    """The logo and the navigation (with its counters): the sidebar's and the phone menu's."""
    def item(k, r, i, c):
        link = _nav_item(k, r, i, c, active)
        # in the phone menu a tap also closes the menu (the page under it may be this one)
        return rx.dialog.close(link) if in_drawer else link

    logo = rx.hstack(
        rx.box(rx.icon("graduation-cap", size=20, color="white"), background=theme.ACCENT,
               border_radius="8px", padding="6px", line_height="0"),
        rx.vstack(
            rx.text("rxcrm", color="white", weight="bold", size="4", line_height="1.1"),
            rx.text(AppState.t["app.tagline"], color=theme.SIDEBAR_TEXT, size="1", line_height="1.2"),
            spacing="0",
        ),
        align="center", spacing="3", padding_x="14px", padding_y="16px", width="100%",
    )
    if in_drawer:
        logo = rx.hstack(
            logo,
            rx.dialog.close(rx.icon_button(rx.icon("x", size=18), variant="ghost", color_scheme="gray", size="2",
                                           color=theme.SIDEBAR_TEXT, aria_label=AppState.t["nav.close"],
                                           data_testid="nav-close")),
            align="center", width="100%", padding_right="6px",
        )
    return [
        logo,
        rx.text(AppState.t["nav.section.crm"], size="1", color="#7d8a9a", weight="bold",
                padding_x="14px", padding_top="8px", letter_spacing="0.06em"),
        *[item(k, r, i, c) for k, r, i, c in NAV[:5]],
        rx.text(AppState.t["nav.section.control"], size="1", color="#7d8a9a", weight="bold",
                padding_x="14px", padding_top="14px", letter_spacing="0.06em"),
        *[item(k, r, i, c) for k, r, i, c in NAV[5:]],
    ]


def sidebar(active: str) -> rx.Component:
    return rx.vstack(
        *_nav_body(active),
        spacing="1",
        padding_x="10px",
        width=theme.SIDEBAR_W,
        min_width=theme.SIDEBAR_W,
        height="100vh",
        position="sticky",
        top="0",
        background=theme.SIDEBAR_BG,
        overflow_y="auto",
        data_testid="sidebar",
        style=theme.narrow(display="none"),  # below 1024 px: the menu button of the top bar
    )


def nav_menu(active: str) -> rx.Component:
    """Below 1024 px (phones, tablets): the top bar's menu button opening the navigation (with its counters) as a
    sheet from the left. A tap on a section closes it; Esc or a tap beside it too."""
    return rx.box(
        rx.dialog.root(
            rx.dialog.trigger(
                rx.icon_button(rx.icon("menu", size=22), variant="ghost", color_scheme="gray", size="3",
                               aria_label=AppState.t["nav.menu"], data_testid="nav-menu"),
            ),
            rx.dialog.content(
                rx.dialog.title(AppState.t["nav.menu"], style=_VISUALLY_HIDDEN),
                rx.dialog.description(AppState.t["nav.menu"], style=_VISUALLY_HIDDEN),
                rx.vstack(*_nav_body(active, in_drawer=True), spacing="1", width="100%", padding_bottom="24px"),
                position="fixed", top="0", left="0", bottom="0", margin="0",
                width="min(300px, 86vw)", max_width="none", height="100dvh", max_height="none",
                padding="0 10px", border_radius="0 12px 12px 0", background=theme.SIDEBAR_BG,
                overflow_y="auto", data_testid="nav-drawer",
                style={"animation": "none", "boxShadow": "0 0 40px rgba(0, 0, 0, 0.35)"},
            ),
        ),
        flex_shrink="0", line_height="0", display="none",
        style=theme.narrow(display="block"),
    )


_VISUALLY_HIDDEN = {"position": "absolute", "width": "1px", "height": "1px", "overflow": "hidden",
                    "clip": "rect(0 0 0 0)", "whiteSpace": "nowrap", "margin": "0", "padding": "0"}


def _user_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.avatar(fallback=AppState.user_initials, size="2", radius="full", color_scheme="blue"),
                rx.vstack(
                    rx.text(AppState.user_name, size="2", weight="medium", color="#1f2933"),
                    rx.text(AppState.role_label, size="1", color=theme.TEXT_MUTED),
                    spacing="0", align="start", style={theme.COMPACT: {"display": "none"}},
                ),
                rx.icon("chevron-down", size=16, color=theme.TEXT_MUTED, style={theme.COMPACT: {"display": "none"}}),
                variant="ghost", size="3", data_testid="user-menu", cursor="pointer",
                style=theme.phone(padding="0 2px", margin="0"),
            ),
        ),
        rx.menu.content(
            rx.box(rx.text(AppState.user_name, size="2", weight="medium"),
                   rx.text(AppState.role_label, size="1", color=theme.TEXT_MUTED),
                   padding="4px 12px 8px", display="none", style={theme.COMPACT: {"display": "block"}}),
            rx.text(AppState.t["user.language"], size="1", color=theme.TEXT_MUTED, padding_x="12px", padding_y="4px"),
            rx.menu.item(
                rx.hstack(rx.text(i18n.LANGS["ru"]), rx.cond(AppState.lang == "ru", rx.icon("check", size=14)),
                          justify="between", width="100%"),
                on_select=AppState.set_lang("ru"), data_testid="lang-ru",
            ),
            rx.menu.item(
                rx.hstack(rx.text(i18n.LANGS["en"]), rx.cond(AppState.lang == "en", rx.icon("check", size=14)),
                          justify="between", width="100%"),
                on_select=AppState.set_lang("en"), data_testid="lang-en",
            ),
            rx.menu.separator(),
            rx.menu.item(rx.hstack(rx.icon("log-out", size=14), rx.text(AppState.t["user.logout"])),
                         on_select=AppState.logout, color="red", data_testid="logout"),
            min_width="200px",
        ),
    )


NOTE_ICON = {"reminder": ("alarm-clock", "#d97706"), "assigned": ("user-plus", theme.ACCENT),
             "automation": ("zap", "#7c3aed")}


def _note_icon(kind) -> rx.Component:
    return rx.match(
        kind,
        *[(k, rx.icon(icon, size=15, color=color)) for k, (icon, color) in NOTE_ICON.items()],
        rx.icon("bell", size=15, color=theme.TEXT_MUTED),
    )


def _note_row(n: NotificationRow) -> rx.Component:
    return rx.hstack(
        rx.box(_note_icon(n.kind), padding_top="2px", line_height="0"),
        rx.vstack(
            rx.text(n.text, size="2", color="#1f2933"),
            rx.text(n.at, size="1", color=theme.TEXT_MUTED),
            spacing="0", flex="1", min_width="0",
        ),
        rx.cond(n.href != "", rx.icon("chevron-right", size=14, color="#b5bfcb", flex_shrink="0")),
        spacing="2", align="start", width="100%", padding="8px", border_radius="6px", cursor="pointer",
        _hover={"background": "#f1f4f7"},
        on_click=AppState.open_notification(n.id, n.href),
        data_testid="bell-item",
    )


def _bell() -> rx.Component:
    return rx.popover.root(
        rx.popover.trigger(
            rx.box(
                rx.icon_button(rx.icon("bell", size=18), variant="ghost", color_scheme="gray", size="3",
                               aria_label=AppState.t["top.notifications"], data_testid="bell"),
                rx.cond(
                    AppState.unread_count > 0,
                    rx.box(AppState.unread_count, position="absolute", top="2px", right="0px",
                           background=theme.DANGER, color="white", font_size="10px", font_weight="700",
                           border_radius="9px", padding_x="5px", line_height="16px",
                           data_testid="bell-count"),
                    rx.fragment(),
                ),
                position="relative",
            ),
        ),
        rx.popover.content(
            rx.hstack(
                rx.text(AppState.t["top.notifications"], weight="bold", size="3"),
                rx.spacer(),
                rx.cond(AppState.unread_count > 0,
                        rx.link(AppState.t["top.mark_all_read"], size="1", cursor="pointer",
                                on_click=AppState.mark_all_read, data_testid="bell-read-all")),
                width="100%", align="center", padding_bottom="4px",
                border_bottom=f"1px solid {theme.BORDER}",
            ),
            rx.cond(
                AppState.notifications.length() > 0,
                rx.vstack(
                    rx.foreach(AppState.notifications, _note_row),
                    spacing="0", width="100%", padding_top="6px", max_height="420px", overflow_y="auto",
                ),
                rx.hstack(
                    rx.icon("bell-off", size=16, color="#b5bfcb"),
                    rx.text(AppState.t["top.no_notifications"], size="2", color=theme.TEXT_MUTED),
                    spacing="2", align="center", padding_top="12px", padding_bottom="4px",
                    data_testid="bell-empty",
                ),
            ),
            rx.cond(
                AppState.unread_count > AppState.notifications.length(),
                rx.text(AppState.t["top.more_notifications"] + " "
                        + (AppState.unread_count - AppState.notifications.length()).to_string(),
                        size="1", color=theme.TEXT_MUTED, padding_top="6px"),
            ),
            width="380px",
            max_width="calc(100vw - 16px)",
            align="end",
            data_testid="bell-popover",
        ),
        open=AppState.bell_open,
        on_open_change=AppState.set_bell_open,
    )


# ---- the top search (self-contained: search_box() is all the top bar needs) ---------------

SEARCH_ICON = {"lead": "filter", "deal": "handshake", "contact": "contact", "company": "building-2"}
SEARCH_W = "380px"
SEARCH_DEBOUNCE_MS = 250  # a query per pause in typing, not per key


def _search_hit(hit: SearchHit) -> rx.Component:
    return rx.link(
        rx.vstack(
            rx.text(hit.title, size="2", weight="medium", color="#1f2933", white_space="nowrap",
                    overflow="hidden", text_overflow="ellipsis", width="100%"),
            rx.cond(hit.hint != "",
                    rx.text(hit.hint, size="1", color=theme.TEXT_MUTED, white_space="nowrap", overflow="hidden",
                            text_overflow="ellipsis", width="100%")),
            spacing="0", width="100%", min_width="0",
        ),
        href=hit.href, underline="none", display="block", padding="6px 12px 6px 38px",
        _hover={"background": "#f1f4f7"}, _focus={"background": "#eaf2fc", "outline": "none"},
        on_click=SearchState.search_reset, data_testid="search-hit", data_href=hit.href,
    )


def _search_group(g: SearchGroup) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.match(g.entity, *[(k, rx.icon(icon, size=14, color=theme.ACCENT)) for k, icon in SEARCH_ICON.items()],
                     rx.icon("search", size=14, color=theme.ACCENT)),
            rx.text(g.label, size="1", weight="bold", color=theme.TEXT_MUTED, letter_spacing="0.04em",
                    text_transform="uppercase"),
            rx.spacer(),
            rx.cond(g.more,
                    rx.link(AppState.t["search.show_all"], href=g.href_all, size="1", underline="hover",
                            on_click=SearchState.search_reset, data_testid="search-show-all")),
            align="center", spacing="2", padding="8px 12px 4px 14px", width="100%",
        ),
        rx.foreach(g.hits, _search_hit),
        width="100%", padding_bottom="4px", border_bottom=f"1px solid {theme.BORDER}",
        data_testid="search-group", data_entity=g.entity,
    )


def _search_dropdown() -> rx.Component:
    return rx.fragment(
        # a click anywhere else closes the dropdown
        rx.box(position="fixed", inset="0", z_index="40", on_click=SearchState.search_close,
               data_testid="search-overlay", style=theme.phone(background="rgba(15, 23, 42, 0.28)")),
        rx.box(
            rx.cond(
                SearchState.search_empty,
                rx.hstack(rx.icon("search-x", size=16, color="#b5bfcb"),
                          rx.text(AppState.t["search.nothing"], size="2", color=theme.TEXT_MUTED),
                          spacing="2", align="center", padding="14px", data_testid="search-empty"),
                rx.foreach(SearchState.search_groups, _search_group),
            ),
            rx.text(AppState.t["search.hint"], size="1", color=theme.TEXT_MUTED, padding="6px 14px 8px"),
            position="absolute", top="calc(100% + 6px)", right="0", width="460px", max_height="70vh",
            overflow_y="auto", background="white", border=f"1px solid {theme.BORDER}", border_radius="10px",
            box_shadow="0 12px 32px rgba(15, 23, 42, 0.14)", z_index="50", data_testid="search-dropdown",
            style=theme.phone(width="auto", left="8px", right="8px", top="calc(100% - 4px)",
                              max_height="calc(100dvh - 72px)"),
        ),
    )


# On a phone the search is an icon-sized box in the top bar; a tap on it (focus) or an open
# dropdown spreads it over the whole bar, as wide as the screen.
_SEARCH_OPEN = {"position": "absolute", "inset": "0", "width": "auto", "height": theme.TOPBAR_H,
                "padding": "10px", "zIndex": "46", "background": "white",
                "& .rt-TextFieldRoot": {"width": "100%"},
                "& input": {"color": "inherit"},
                "& input::placeholder": {"color": "var(--gray-a10)"}}
_SEARCH_PHONE = {
    "flexShrink": "0",
    "& .rt-TextFieldRoot": {"width": "40px", "cursor": "pointer"},
    "& input, & input::placeholder": {"color": "transparent"},
    "&:focus-within": _SEARCH_OPEN,
    "&[data-open='true']": _SEARCH_OPEN,
}


def search_box() -> rx.Component:
    """The top bar's search: type a name, phone (any format), e-mail or title; matches of
    every kind appear grouped below as you type (debounced), Enter opens the best target."""
    return rx.box(
        rx.form(
            rx.debounce_input(
                rx.input(
                    rx.input.slot(rx.icon("search", size=16)),
                    name="q",
                    on_change=SearchState.search_type,
                    on_focus=SearchState.search_focus,
                    placeholder=AppState.t["top.search"],
                    width=SEARCH_W,
                    size="2",
                    radius="large",
                    auto_complete="off",
                    aria_label=AppState.t["top.search"],
                    data_testid="global-search",
                ),
                value=SearchState.search_q,
                debounce_timeout=SEARCH_DEBOUNCE_MS,
            ),
            on_submit=AppState.global_search,
            reset_on_submit=False,
            position="relative",
            z_index="45",  # above the dropdown's overlay: the box stays usable while it is open
        ),
        rx.cond(SearchState.search_open, _search_dropdown()),
        position="relative",
        data_testid="search-box",
        data_open=SearchState.search_open.to_string(),
        # below 1024 px a narrower box; on a phone an icon that spreads when used
        style={theme.NARROW: {"& .rt-TextFieldRoot": {"width": "260px"}}, theme.PHONE: _SEARCH_PHONE},
    )


def badges_timer() -> rx.Component:
    """Refreshes the counters and the bell every minute while a page is open (hidden)."""
    return rx.moment(interval=60000, on_change=AppState.poll_badges, display="none")


def topbar(title: rx.Var | str, active: str = "") -> rx.Component:
    return rx.hstack(
        nav_menu(active),
        rx.heading(title, size=rx.breakpoints(initial="4", sm="5"), weight="bold", color="#1f2933",
                   data_testid="page-title", white_space="nowrap",
                   style=theme.phone(overflow="hidden", text_overflow="ellipsis", min_width="0")),
        rx.spacer(),
        search_box(),
        rx.cond(AppState.is_authenticated, rx.fragment(_bell(), _user_menu(), badges_timer(),
                                                       tab_visibility(on_change=AppState.set_tab_visible))),
        align="center",
        spacing=rx.breakpoints(initial="2", sm="4"),
        height=theme.TOPBAR_H,
        min_width="0",
        padding_x=rx.breakpoints(initial="10px", sm="24px"),
        background="white",
        border_bottom=f"1px solid {theme.BORDER}",
        position="sticky",
        top="0",
        z_index="10",
        width="100%",
    )


def page_wait() -> rx.Component:
    """The page's place while what it shows is not there yet (the session check, a page's
    own state being loaded)."""
    return rx.center(rx.spinner(size="3"), height="40vh", width="100%", data_testid="page-wait")


def layout(active: str, title: rx.Var | str, *children: rx.Component) -> rx.Component:
    """A protected page: the shell (navigation, top bar, title) paints at once; the page's
    own content, the bell and the user menu wait until the session is checked (a browser
    without a live session is sent to /login by `AppState.check_login`, having seen only the
    empty shell). On a phone (below 768 px) the sidebar hides behind the top bar's menu
    button."""
    return rx.hstack(
        sidebar(active),
        rx.vstack(
            topbar(title, active),
            rx.box(
                rx.cond(
                    AppState.is_authenticated,
                    rx.fragment(*children),
                    page_wait(),
                ),
                padding=rx.breakpoints(initial=theme.PAGE_PAD_PHONE, sm="24px"), width="100%",
                flex="1", min_width="0",
            ),
            spacing="0",
            flex="1",
            min_width="0",
            min_height="100vh",
        ),
        spacing="0",
        width="100%",
        background=theme.PAGE_BG,
        font_family=theme.FONT,
        align="start",
    )


def placeholder(hint_key: str, icon: str) -> rx.Component:
    """A clear 'coming soon' card for sections that later issues fill."""
    return rx.center(
        rx.vstack(
            rx.box(rx.icon(icon, size=28, color=theme.ACCENT), background="#e8f1fb", border_radius="14px",
                   padding="14px", line_height="0"),
            rx.heading(AppState.t["common.soon"], size="4", color="#1f2933"),
            rx.text(AppState.t[hint_key], size="2", color=theme.TEXT_MUTED, text_align="center",
                    max_width="420px"),
            align="center", spacing="3", padding="48px",
            background="white", border=f"1px solid {theme.BORDER}", border_radius="12px",
            data_testid="placeholder",
        ),
        padding_top="48px",
    )
