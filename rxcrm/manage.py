"""Maintenance commands: `python -m rxcrm.manage migrate | accounts | import …`.

`import --entity lead --file leads.csv --as admin [--dry-run] [--duplicates skip|update|create]
[--update-mode empty|overwrite] [--match phone,email,name] [--mapping NAME] [--encoding cp1251]
[--delimiter ";"]` imports a file into the database of REFLEX_DB_URL (as the app does) through
services/imports.py — the same checks, rules and log as the wizard, undoable on /settings →
Импорт — and prints one JSON object: created, updated, skipped, rejected, errors (row, column,
value, message), job (its number)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sqlmodel import select

from rxcrm.db import db_url, migrate, optimize, session_scope
from rxcrm.models import User
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.services.intake import DEMO_TOKEN, has_demo_token
from rxcrm.services.webhooks import demo_urls

DEMO_LOGINS = ("admin", "head", "manager1", "manager2", "director", "admissions1")


def cmd_migrate() -> None:
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
    optimize()
    print(f"База данных готова: {db_url()}")


def cmd_accounts() -> None:
    with session_scope() as s:
        users = {u.login: u for u in s.exec(select(User).where(User.login.in_(DEMO_LOGINS))).all()}
        demo_token = has_demo_token(s)
        rest_urls = demo_urls(s, f"http://localhost:{os.environ.get('PORT', '3000')}")
    if not users:
        return
    print("\nДемо-учётные записи (пароль у всех: demo):")
    for login in DEMO_LOGINS:
        if login in users:
            print(f"  {login:<12} {users[login].full_name} ({users[login].role})")
    if demo_token:
        print(f"Токен интеграций: {DEMO_TOKEN}")
    if rest_urls:
        print("Вебхуки REST (как в Битрикс24, docs/REST_API.md):")
        for login, url in rest_urls:
            print(f"  {login:<12} {url}")
    print()


ERRORS_SHOWN = 1000


def cmd_import(argv: list[str]) -> int:
    from rxcrm import hooks
    from rxcrm.db import transact
    from rxcrm.models import ImportMapping, ImportReject
    from rxcrm.services import imports
    from rxcrm.services.auth import actor_for
    from rxcrm.services.errors import ServiceError

    p = argparse.ArgumentParser(prog="python -m rxcrm.manage import")
    p.add_argument("--entity", required=True, choices=("lead", "deal", "contact", "company"))
    p.add_argument("--file", required=True, type=Path)
    p.add_argument("--as", dest="login", required=True, help="the login the import acts as (an admin or a head)")
    p.add_argument("--dry-run", action="store_true", help="check only: nothing is written")
    p.add_argument("--duplicates", choices=("skip", "update", "create"), default="skip")
    p.add_argument("--update-mode", choices=("empty", "overwrite"), default="empty")
    p.add_argument("--match", default="phone,email", help="what makes a duplicate: phone,email,name")
    p.add_argument("--mapping", default="", help="a mapping saved in the wizard (its name)")
    p.add_argument("--encoding", default=None)
    p.add_argument("--delimiter", default=None)
    a = p.parse_args(argv)
    if not a.file.is_file():
        print(json.dumps({"error": f"Файл не найден: {a.file}"}, ensure_ascii=False))
        return 2
    migrate()
    hooks.wire()

    def prepare(s):
        user = s.exec(select(User).where(User.login == a.login, User.is_active.is_(True))).first()
        if user is None:
            raise ServiceError(f"Пользователь «{a.login}» не найден или отключён")
        actor = actor_for(user, source="cli", client="manage import")
        job, _info = imports.start(s, actor, a.entity, a.file, a.file.name, encoding=a.encoding,
                                   delimiter=a.delimiter)
        mapping = job.mapping
        if a.mapping:
            saved = s.exec(select(ImportMapping).where(ImportMapping.entity == a.entity,
                                                       ImportMapping.name == a.mapping)).first()
            if saved is None:
                raise ServiceError(f"Сохранённое сопоставление «{a.mapping}» не найдено")
            mapping = imports.mapping_from_saved(job.headers, saved.columns)
        imports.configure(s, actor, job.id, mapping, {"duplicates": a.duplicates, "update_mode": a.update_mode,
                                                      "match": [m.strip() for m in a.match.split(",") if m.strip()]})
        imports.request(s, actor, job.id, dry_run=a.dry_run)
        return job.id

    try:
        job_id = transact(prepare)
    except ServiceError as exc:
        print(json.dumps({"error": exc.message}, ensure_ascii=False))
        return 1
    imports.work(job_id)

    def result(s):
        job = s.get(imports.ImportJob, job_id)
        rows = s.exec(select(ImportReject).where(ImportReject.job_id == job_id, ImportReject.dry_run == job.dry_run,
                                                 ImportReject.skipped.is_(False))
                      .order_by(ImportReject.row).limit(ERRORS_SHOWN + 1)).all()
        errors = [{"row": r.row, **e} for r in rows[:ERRORS_SHOWN] for e in r.errors]
        out = {"job": job.id, "status": job.status, "dry_run": job.dry_run, "rows": job.done_count,
               "created": job.created, "updated": job.updated, "skipped": job.skipped, "rejected": job.rejected,
               "errors": errors}
        if len(rows) > ERRORS_SHOWN:
            out["errors_truncated"] = True
        if job.message:
            out["message"] = job.message
        return out
    out = transact(result, write=False)
    print(json.dumps(out, ensure_ascii=False))
    return 0 if out["status"] in ("done", "checked") else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["import"]:
        return cmd_import(argv[1:])
    commands = {"migrate": cmd_migrate, "accounts": cmd_accounts}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m rxcrm.manage migrate|accounts|import …", file=sys.stderr)
        return 2
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
