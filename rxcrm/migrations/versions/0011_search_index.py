"""a search index over search_text: trigram GIN (PostgreSQL), FTS5 trigram tables (SQLite); ё folded to е

Free text (the lists' search box, the top search) matches `search_text` as a substring.
This revision indexes it on the four item tables so that a fragment of 3+ characters
no longer scans every row:
- PostgreSQL: the pg_trgm extension and a GIN trigram index `ix_<table>_search_trgm`;
  `search_text LIKE '%q%'` uses it as it stands.
- SQLite (≥ 3.34, FTS5 with the trigram tokenizer): a virtual table `<table>_fts` over
  the table's own `search_text` (external content, rowid = id, nothing stored twice),
  filled here and kept in sync by the triggers `<table>_fts_ai/_ad/_au` (insert, delete,
  update of id/search_text). The services ask it for candidate ids
  (`<table>_fts MATCH '"q"'`) and keep the exact LIKE on the table.
  A later batch migration that recreates one of these tables drops its triggers: create
  them again there (tests/test_search_index.py checks they exist after every migration).
Existing rows get `ё` → `е` in search_text (the services fold the query and new texts
the same way, so «Артем» finds «Артём»); the downgrade does not bring ё back, and keeps
the pg_trgm extension (other objects may use it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 00:11:00
"""
import sqlite3
from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("lead", "deal", "contact", "company")


def _sqlite_fts(table: str) -> list[str]:
    fts = f"{table}_fts"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(search_text, content='{table}', content_rowid='id', "
        f"tokenize='trigram')",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON \"{table}\" BEGIN "
        f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON \"{table}\" BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF id, search_text ON \"{table}\" "
        f"WHEN old.id IS NOT new.id OR old.search_text IS NOT new.search_text BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
        f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text); END",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite" and sqlite3.sqlite_version_info < (3, 34):
        raise RuntimeError(f"SQLite {sqlite3.sqlite_version} has no FTS5 trigram tokenizer: "
                           "the search index needs SQLite 3.34 or newer")
    for table in TABLES:  # first, so the index is built once over the folded texts
        op.execute(f"UPDATE \"{table}\" SET search_text = replace(replace(search_text, 'ё', 'е'), 'Ё', 'Е') "
                   f"WHERE search_text LIKE '%ё%' OR search_text LIKE '%Ё%'")
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table in TABLES:
            op.execute(f"CREATE INDEX ix_{table}_search_trgm ON \"{table}\" USING gin (search_text gin_trgm_ops)")
    elif dialect == "sqlite":
        for table in TABLES:
            for statement in _sqlite_fts(table):
                op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in TABLES:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
    elif dialect == "sqlite":
        for table in TABLES:
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
