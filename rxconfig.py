import os

import reflex as rx

config = rx.Config(
    app_name="rxcrm",
    db_url=os.environ.get("REFLEX_DB_URL", "sqlite:///rxcrm.db"),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.RadixThemesPlugin(),
    ],
)
