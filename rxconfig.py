import os

import reflex as rx

# Without Redis, Reflex keeps each tab's state on disk too (.states/, for a restart), pickling a
# changed state 2 s after its change by default. A room's boards change every couple of seconds
# (live updates): every open tab was pickled on the event loop every 2 s (~10% of the server's
# time with 50 people). What a restart may lose is a tab's last seconds of UI state (a filter
# being chosen), never data; 10 s.
os.environ.setdefault("REFLEX_STATE_MANAGER_DISK_DEBOUNCE", "10s")

config = rx.Config(
    app_name="rxcrm",
    db_url=os.environ.get("REFLEX_DB_URL", "sqlite:///rxcrm.db"),
    telemetry_enabled=False,
    # With Redis (make prod, several workers) an event holds the user's state lock at most this
    # long (ms); past it the event fails and its changes are dropped (LockExpiredError). The
    # default 10 s was reached under load while handlers ran on the event loop; they now run
    # in worker threads and are short: 20 s leaves headroom without hiding a stuck handler.
    redis_lock_expiration=20_000,
    show_built_with_reflex=False,
    # Only the app's own origin talks to it (rxcrm/web.py checks Origin against Host); list
    # any other front-end origin in RXCRM_ALLOWED_ORIGINS. Reflex's default "*" echoed any
    # Origin with credentials.
    cors_allowed_origins=[o.strip() for o in os.environ.get("RXCRM_ALLOWED_ORIGINS", "").split(",") if o.strip()],
    plugins=[
        rx.plugins.SitemapPlugin(),
        # The app's look (Radix Themes): light, blue accent, slate greys.
        rx.plugins.RadixThemesPlugin(theme=rx.theme(appearance="light", accent_color="blue", gray_color="slate",
                                                    radius="medium", scaling="100%")),
    ],
)
