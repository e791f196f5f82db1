"""SQLite: a bulk insert may index its rows itself (the `search_pause` switch of the FTS triggers)

The insert triggers of the search index (0011) index each new row on its own: on SQLite
that is ~60 µs per row — half of what writing a lead with its 19 indexes costs — while one
INSERT … SELECT into `<table>_fts` after a batch costs ~1 µs per row. A bulk writer
(create.create_leads: an import's chunk) puts `'<table>'` into `search_pause` in its own
transaction, writes, indexes the batch in one statement and takes the row out again
(services/search_index.py `indexed_together`). The row is never seen by anyone else: SQLite has one
writer at a time and the row is gone before the commit. Every other write path is as before.
PostgreSQL: nothing (its GIN index has its own pending list).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 15:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("lead", "deal", "contact", "company")


def _insert_trigger(table: str, paused: bool) -> str:
    fts = f"{table}_fts"
    when = f"WHEN NOT EXISTS (SELECT 1 FROM search_pause WHERE tbl = '{table}') " if paused else ""
    return (f"CREATE TRIGGER {fts}_ai AFTER INSERT ON \"{table}\" {when}BEGIN "
            f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text); END")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_pause (tbl VARCHAR NOT NULL PRIMARY KEY)")
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_ai")
        op.execute(_insert_trigger(table, paused=True))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_ai")
        op.execute(_insert_trigger(table, paused=False))
    op.execute("DROP TABLE IF EXISTS search_pause")
