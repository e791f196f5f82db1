"""Maintenance commands: `python -m rxcrm.manage migrate | accounts`."""
from __future__ import annotations

import os
import sys

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


def main(argv: list[str]) -> int:
    commands = {"migrate": cmd_migrate, "accounts": cmd_accounts}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m rxcrm.manage migrate|accounts", file=sys.stderr)
        return 2
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
