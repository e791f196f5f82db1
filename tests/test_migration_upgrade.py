"""An office's existing SQLite database upgrades: migrations that rebuild a table (SQLite's
batch mode: copy, DROP, rename) must not trip over foreign keys pointing at it — an
upgrade from 0008 with saved views in use failed with «FOREIGN KEY constraint failed»."""
from __future__ import annotations

from alembic import command
from sqlalchemy import text

from rxcrm.db import alembic_config, get_engine, migrate


def test_an_old_database_with_data_upgrades_to_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0008")
    with get_engine(url).begin() as c:
        c.execute(text("INSERT INTO department (id, code, name) VALUES (1, 'dpo', 'ДПО')"))
        c.execute(text("INSERT INTO crm_user (id, login, full_name, email, password_hash, role, department_id, "
                       "is_active, locale, created_at) VALUES (1, 'm', 'M', '', 'x', 'manager', 1, 1, 'ru', "
                       "'2026-11-01 10:00:00')"))
        c.execute(text("INSERT INTO filter_preset (id, page, name, owner_id, is_shared, is_builtin, code, filters, sort, "
                       "created_at) VALUES (7, 'deals', 'Мои', 1, 0, 0, '', '{}', 0, '2026-11-01 10:00:00')"))
        c.execute(text("INSERT INTO user_page_setting (id, user_id, page, default_preset_id, view_mode, page_size) "
                       "VALUES (1, 1, 'deals', 7, 'kanban', 20)"))
    migrate(url)  # to head, through 0009's rebuild of filter_preset
    with get_engine(url).connect() as c:
        assert c.execute(text("SELECT name FROM filter_preset WHERE id = 7")).scalar() == "Мои"
        assert c.execute(text("SELECT default_preset_id FROM user_page_setting")).scalar() == 7
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1  # back on for the app
