"""Design tokens shared by all components."""
SIDEBAR_BG = "#1b2636"
SIDEBAR_ACTIVE = "#2c3b52"
SIDEBAR_TEXT = "#c9d3df"
PAGE_BG = "#f3f5f7"
BORDER = "#e3e7ec"
TEXT_MUTED = "#6b7785"
ACCENT = "#2f7fd8"
DANGER = "#e5484d"
SIDEBAR_W = "232px"
TOPBAR_H = "56px"
FONT = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

# Phones and small screens: below 768 px (Radix's and Reflex's `sm` breakpoint) the sidebar
# becomes a menu, the board shows one column at a time, lists become cards. Rules that only
# a phone gets sit in this media query, so the desktop keeps exactly its own CSS.
PHONE_MAX_PX = 767
PHONE = f"@media screen and (max-width: {PHONE_MAX_PX}.98px)"
PAGE_PAD_PHONE = "12px"
# Between a phone and a wide screen (tablets, small laptops): below 1024 px the sidebar is a
# menu too and the work toolbar puts the filter bar on a line of its own; below 1280 px the
# top bar shows the user's avatar without the name. (A style dict lists NARROW before PHONE,
# so that a phone's own rule comes later and wins.)
NARROW = "@media screen and (max-width: 1023.98px)"
COMPACT = "@media screen and (max-width: 1279.98px)"


def phone(**css) -> dict:
    """`style=theme.phone(display="none")`: CSS that applies on a phone only."""
    return {PHONE: css}


def narrow(**css) -> dict:
    """CSS below 1024 px (tablets and phones)."""
    return {NARROW: css}


def desktop_hidden(**css) -> dict:
    """Props of an element shown on a phone only (hidden from 768 px up)."""
    return {"display": "none", "style": phone(display=css.pop("display", "flex"), **css)}
