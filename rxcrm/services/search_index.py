"""Writing many rows into an item table with the search index kept in one statement.

On SQLite each new row of lead/deal/contact/company is put into `<table>_fts` by an insert
trigger (migrations 0011, 0016): ~60 µs a row, half of what a lead's own INSERT costs. A
batch writer (an import's chunk: create.create_leads) instead writes its rows inside
`indexed_together`: the trigger stands aside (the table's row in `search_pause`, in the
writer's own transaction — SQLite has one writer at a time and the row is gone before the
commit, so nobody else ever sees it) and the batch is indexed by one INSERT … SELECT.
PostgreSQL: the block does nothing more (its trigram GIN index is an index like any other)."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

INDEXED = ("lead", "deal", "contact", "company")


@contextmanager
def indexed_together(session: Session, table: str, ids: Callable[[], Sequence[int]]) -> Iterator[None]:
    """Rows of `table` inserted in the block are indexed at its end, all at once: `ids()`
    names them (called when the block ends). Nothing else should insert into `table` in it."""
    if table not in INDEXED:
        raise ValueError(f"{table} has no search index")
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    session.flush()  # what was pending before is indexed by the trigger, as always
    conn = session.connection()
    conn.execute(text("INSERT INTO search_pause (tbl) VALUES (:t)"), {"t": table})
    resume = text("DELETE FROM search_pause WHERE tbl = :t")
    try:
        yield
        session.flush()
        conn.execute(text(f"INSERT INTO {table}_fts (rowid, search_text) SELECT id, search_text FROM \"{table}\" "
                          f"WHERE id IN (SELECT value FROM json_each(:ids))"), {"ids": json.dumps(list(ids()))})
    except BaseException:
        # the caller rolls back (the row goes with it); if it goes on, the trigger is back
        with suppress(SQLAlchemyError):
            conn.execute(resume, {"t": table})
        raise
    conn.execute(resume, {"t": table})


__all__ = ["INDEXED", "indexed_together"]
