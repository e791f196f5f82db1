"""Schema, migrations, default configuration and phone normalisation."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from rxcrm.db import get_engine, migrate, session_scope
from rxcrm.models import (Communication, CustomField, Department, Pipeline, RolePermission, Stage,
                          metadata)
from rxcrm.rules import defaults
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.services.phones import comm_row, normalize_phone, phone_search_key, prefix_range


def test_migration_creates_every_table_and_is_repeatable(db_url):
    migrate(db_url)  # second run is a no-op
    insp = inspect(get_engine(db_url))
    assert set(metadata.tables) <= set(insp.get_table_names())
    from alembic.script import ScriptDirectory

    from rxcrm.db import alembic_config
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    with get_engine(db_url).connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalar() == head


def _index_columns(db_url, table):
    return [tuple(ix["column_names"]) for ix in inspect(get_engine(db_url)).get_indexes(table)]


def test_board_list_and_phone_indexes_exist(db_url):
    for table in ("lead", "deal"):
        cols = _index_columns(db_url, table)
        assert ("pipeline_id", "stage_id", "created_at") in cols
        # a lookup by responsible, by creation date or by pipeline has an index that starts with
        # it — one (0017): a single-column copy of a composite's head only slows every write
        for column in ("responsible_id", "created_at", "pipeline_id"):
            assert any(c[0] == column for c in cols), column
            assert (column,) not in cols, column
        no_prefix = [(a, b) for a in cols for b in cols if a != b and b[:len(a)] == a]
        assert no_prefix == [], no_prefix
        assert ("responsible_id", "semantic") in cols
        assert ("pipeline_id", "stage_id", "deleted_at", "department_id", "responsible_id", "amount",
                "next_activity_at", "search_text") in cols  # covering: board sums, counts, search
    comm = _index_columns(db_url, "communication")
    assert ("kind", "norm_rev") in comm and ("kind", "norm") in comm


def test_defaults_written_once_with_the_spec_pipelines(db):
    with session_scope(db) as s:
        ensure_defaults(s)  # idempotent
    with session_scope(db) as s:
        assert {d.name for d in s.exec(select(Department)).all()} == {"ДПО", "Приёмная комиссия"}
        pipes = {p.code: p for p in s.exec(select(Pipeline)).all()}
        assert [p.entity for p in sorted(pipes.values(), key=lambda p: p.sort)] == ["lead", "deal", "deal"]

        def stages(code):
            rows = s.exec(select(Stage).where(Stage.pipeline_id == pipes[code].id).order_by(Stage.sort)).all()
            return [(r.name, r.semantic) for r in rows]

        assert [n for n, sem in stages("leads") if sem == "process"] == [
            "Не обработан", "Знакомство", "Уровень образования", "Сфера интересов",
            "Образовательная программа"]
        assert ("Качественный", "success") in stages("leads")
        assert {n for n, sem in stages("leads") if sem == "failure"} == {"Некачественный", "Нецелевые\\Дубли"}
        assert [n for n, _ in stages("dpo")] == [
            "Интерес", "Регистрация", "Договор", "Аванс\\Предоплата", "Зачисление", "Постоплата",
            "Обучение", "Сделка успешна", "Сделка проиграна"]
        assert pipes["masters"].name == "Магистратура (платный приём)"
        assert [n for n, sem in stages("masters") if sem == "process"][0] == "Регистрация"
        assert len(s.exec(select(RolePermission)).all()) == 4 * 4 * 6
        labels = {c.label for c in s.exec(select(CustomField)).all()}
        assert {"Все документы получены", "Сумма баллов", "Скидка (%)"} <= labels


def test_admin_edit_of_a_stage_survives_restart(db):
    with session_scope(db) as s:
        st = s.exec(select(Stage).where(Stage.name == "Знакомство")).one()
        st.name = "Первый контакт"
        s.add(st)
    with session_scope(db) as s:
        ensure_defaults(s)
    with session_scope(db) as s:
        names = [x.name for x in s.exec(select(Stage)).all()]
    assert "Первый контакт" in names and "Знакомство" not in names


@pytest.mark.parametrize("typed", ["8(987) 654-32-10", "(987) 654-32-10", "+79876543210",
                                   "+7 987 654 32 10", "89876543210", "8 987 654-32-10"])
def test_full_phone_forms_normalise_to_one_value(typed):
    assert normalize_phone(typed) == "79876543210"
    assert phone_search_key(typed) == "79876543210"[::-1]


def test_phone_fragment_and_non_phone_queries():
    assert phone_search_key("654-32-10") == "6543210"[::-1]
    assert phone_search_key("Иванов") is None
    assert phone_search_key("12") is None
    assert normalize_phone("+375 29 123-45-67") == "375291234567"
    assert prefix_range("0123") == ("0123", "0124")


def test_phone_suffix_search_uses_the_index(db):
    """Every typed form finds the stored phone through the (kind, norm_rev) index."""
    with session_scope(db) as s:
        s.add(Communication(**comm_row("contact", 1, "phone", "+7 (987) 654-32-10")))
        s.add(Communication(**comm_row("contact", 2, "phone", "8 912 000-00-00")))
        s.add(Communication(**comm_row("contact", 3, "email", "Ivanova@Mail.RU")))
    sql = text("select entity_id from communication where kind='phone' and norm_rev >= :lo and norm_rev < :hi")
    with get_engine(db).connect() as c:
        for typed in ["8(987) 654-32-10", "(987) 654-32-10", "654-32-10", "+79876543210"]:
            lo, hi = prefix_range(phone_search_key(typed))
            assert [r[0] for r in c.execute(sql, {"lo": lo, "hi": hi})] == [1], typed
        email = c.execute(text("select norm from communication where kind='email'")).scalar()
        assert email == "ivanova@mail.ru"
        if c.dialect.name == "sqlite":
            plan = " ".join(str(r) for r in c.execute(text("explain query plan " + sql.text),
                                                       {"lo": "0", "hi": "1"}))
            assert "ix_comm_kind_rev" in plan


# The search index of migrations 0011 and 0016 is not in the models (the services name it in
# SQL, filters.TextMatch, search_index.indexed_together): SQLite's FTS5 tables (+ their shadow
# tables) and the triggers' `search_pause` switch, PostgreSQL's GIN trigram indexes.
# tests/test_search_index.py checks it is there and used.
_SEARCH_INDEX = re.compile(r"(lead|deal|contact|company)_fts(_data|_idx|_docsize|_config)?|search_pause"
                           r"|ix_(lead|deal|contact|company)_search_trgm")


def test_models_and_migrations_agree(db_url):
    """Autogenerate against a migrated database finds nothing to do: every model change has
    its migration (and no migration drifted from the models) — the search index aside."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    skipped: set[str] = set()

    def include_name(name, type_, parent_names):
        if type_ in ("table", "index") and _SEARCH_INDEX.fullmatch(name or ""):
            skipped.add(name)
            return False
        return True

    with get_engine(db_url).connect() as c:
        ctx = MigrationContext.configure(c, opts={"compare_type": True, "render_as_batch": True,
                                                  "include_name": include_name})
        diff = compare_metadata(ctx, metadata)
        sqlite = c.dialect.name == "sqlite"
    assert diff == [], "\n".join(str(d) for d in diff)
    tables = ("lead", "deal", "contact", "company")
    assert skipped == ({f"{t}_fts{s}" for t in tables for s in ("", "_data", "_idx", "_docsize", "_config")}
                       | {"search_pause"} if sqlite else {f"ix_{t}_search_trgm" for t in tables})
