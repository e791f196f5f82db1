"""Small builders for service tests (explicit data, known answers)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, select

from rxcrm.models import Communication, Contact, Deal, Department, Lead, Pipeline, Product, Stage, User, utcnow
from rxcrm.services import auth
from rxcrm.services.phones import comm_row, search_text

_HASH = None


def dept(s: Session, code: str) -> Department:
    return s.exec(select(Department).where(Department.code == code)).one()


def pipeline(s: Session, code: str) -> Pipeline:
    return s.exec(select(Pipeline).where(Pipeline.code == code)).one()


def stage(s: Session, pipe_code: str, stage_code: str) -> Stage:
    p = pipeline(s, pipe_code)
    return s.exec(select(Stage).where(Stage.pipeline_id == p.id, Stage.code == stage_code)).one()


def user(s: Session, login: str, role: str = "manager", dept_code: str | None = "dpo",
         full_name: str | None = None) -> User:
    global _HASH
    if _HASH is None:
        _HASH = auth.hash_password("demo")
    u = User(login=login, full_name=full_name or login.title(), password_hash=_HASH, role=role,
             department_id=dept(s, dept_code).id if dept_code else None)
    s.add(u)
    s.flush()
    return u


def product(s: Session, title: str, price: int = 45000) -> Product:
    p = Product(title=title, price=Decimal(price))
    s.add(p)
    s.flush()
    return p


def contact(s: Session, last: str, first: str, middle: str = "", phones=(), emails=(),
            responsible: User | None = None) -> Contact:
    full = " ".join(x for x in (last, first, middle) if x)
    c = Contact(last_name=last, first_name=first, middle_name=middle, full_name=full,
                responsible_id=responsible.id if responsible else None,
                department_id=responsible.department_id if responsible else None,
                search_text=search_text(full, *emails))
    s.add(c)
    s.flush()
    for p in phones:
        s.add(Communication(**comm_row("contact", c.id, "phone", p)))
    for e in emails:
        s.add(Communication(**comm_row("contact", c.id, "email", e)))
    return c


def deal(s: Session, title: str, responsible: User, pipe_code: str = "dpo", stage_code: str = "INTEREST",
         amount: int = 10000, contact_: Contact | None = None, created_at: datetime | None = None,
         **kw) -> Deal:
    st = stage(s, pipe_code, stage_code)
    d = Deal(title=title, pipeline_id=st.pipeline_id, stage_id=st.id, semantic=st.semantic,
             responsible_id=responsible.id, department_id=responsible.department_id,
             amount=Decimal(amount), contact_id=contact_.id if contact_ else None,
             created_at=created_at or utcnow(), created_by_id=responsible.id,
             search_text=search_text(title, contact_.full_name if contact_ else ""), **kw)
    s.add(d)
    s.flush()
    return d


def lead(s: Session, title: str, responsible: User, stage_code: str = "NEW", last: str = "", first: str = "",
         phones=(), emails=(), created_at: datetime | None = None, **kw) -> Lead:
    st = stage(s, "leads", stage_code)
    ld = Lead(title=title, pipeline_id=st.pipeline_id, stage_id=st.id, semantic=st.semantic,
              responsible_id=responsible.id, department_id=responsible.department_id,
              last_name=last, first_name=first, created_at=created_at or utcnow(),
              search_text=search_text(title, last, first, *emails), **kw)
    s.add(ld)
    s.flush()
    for p in phones:
        s.add(Communication(**comm_row("lead", ld.id, "phone", p)))
    for e in emails:
        s.add(Communication(**comm_row("lead", ld.id, "email", e)))
    return ld


def make_state(cls):
    """A state instance inside a real root state tree (what Reflex builds per client), so
    computed vars of sibling/child states can be marked dirty as in the app."""
    import reflex as rx

    root = rx.State()
    return root.get_substate(cls.get_full_name().split("."))


def route(state, token: str | None = None, path: str = "/", ip: str = "127.0.0.1"):
    """Give a state the router data of a browser on `path` whose session cookie is `token`
    (as rxcrm/web.py passes it on: only its hash, in the x-rxcrm-session header).
    token=None keeps the state's current session; "" means no session."""
    from reflex.istate.data import RouterData

    headers = {"origin": "http://localhost:3000", "host": "localhost:3000"}
    key = auth.session_key(token) if token else \
        (state.router.headers.raw_headers.get(auth.SESSION_HEADER, "") if token is None else "")
    if key:
        headers[auth.SESSION_HEADER] = key
    state.router = RouterData.from_router_data({"headers": headers, "asPath": path, "pathname": path.split("?")[0],
                                                "ip": ip})
    return state


def logged_in(cls, token: str | None, path: str = "/"):
    """A state of class `cls` (in a real root state tree) for the browser holding `token`."""
    return route(make_state(cls), token, path)
