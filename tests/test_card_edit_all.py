"""Card edits always save (issue 11): every editable block of every entity, with the real
seeder's data (optional fields empty as in real data), submitted exactly as the card's
«Изменить» form does — and every field of every entity, custom kinds included, given an
empty or odd value either saves or is refused with a ValidationFailed naming the field
(never an IntegrityError or a driver error). On SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import Company, CustomField, Deal, Pipeline, Stage, User
from rxcrm.seed import seed_demo
from rxcrm.services import cards, catalogs, create, items
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import ValidationFailed
from rxcrm.services.fields import MODELS, field_map

from . import factories as f

PER_ENTITY = 6  # items per entity (deals: per pipeline)


def _pick(s, entity: str) -> list[int]:
    model = MODELS[entity]
    if entity == "deal":
        out = []
        for pipe_id in s.exec(select(Pipeline.id).where(Pipeline.entity == "deal")).all():
            out += s.exec(select(Deal.id).where(Deal.pipeline_id == pipe_id, Deal.deleted_at.is_(None))
                          .order_by(Deal.id).limit(PER_ENTITY)).all()
        return out
    return list(s.exec(select(model.id).where(model.deleted_at.is_(None)).order_by(model.id).limit(PER_ENTITY)).all())


def _changed(row: dict, users: list[str], programs: list[str], n: int) -> str | None:
    """A different value for this field, as a person would type or pick it (None: no way)."""
    old, kind = row["value"], row["kind"]
    if kind in ("money", "number"):
        return str(int(Decimal(old or "0")) + 1000 + n)
    if kind == "int":
        return str((int(old or "0") + 10) % 101)
    if kind == "text":
        return f"{old} изм. {n}".strip()
    if kind == "date":
        return "2027-03-15" if old != "2027-03-15" else "2027-03-16"
    if kind in ("enum", "bool"):
        options = row["options"] or ["Да", "Нет"]
        others = [o for o in options if o != old]
        return others[n % len(others)] if others else None
    pool = {"user": users, "program": programs}.get(kind, [])
    others = [o for o in pool if o != old]
    return others[n % len(others)] if others else None


def test_every_block_of_every_entity_saves_with_seeded_data(db_url):
    seed_demo(db_url, 40, 25, 42)
    with session_scope(db_url) as s:
        admin = actor_for(s.exec(select(User).where(User.login == "admin")).one())
        targets = {e: _pick(s, e) for e in ("lead", "deal", "contact", "company")}
        users = [str(i) for i, _ in catalogs.assignable_users(s)]
        programs = [str(i) for i, _ in catalogs.programs(s)]
    saved, empty_submitted = 0, {e: 0 for e in targets}
    for entity, ids in targets.items():
        assert len(ids) >= 3, entity
        for n, item_id in enumerate(ids):
            with session_scope(db_url) as s:
                blocks = cards.open_card(s, admin, entity, item_id)["edit_blocks"]
            assert blocks
            for block in blocks:
                with session_scope(db_url) as s:
                    card = cards.open_card(s, admin, entity, item_id)
                    rows = cards.edit_fields(s, admin, entity, item_id, block)
                form = {r["key"]: r["value"] for r in rows}  # what the form posts back untouched
                empty_submitted[entity] += sum(1 for v in form.values() if v == "")
                candidates = [(r, v) for r in rows if (v := _changed(r, users, programs, n)) is not None]
                assert candidates, (entity, block)
                row, new = candidates[n % len(candidates)]
                form[row["key"]] = new
                with session_scope(db_url) as s:
                    changes = items.update_fields(s, admin, entity, item_id, form,
                                                  expected_version=card["version"])
                assert list(changes) == [row["key"]], (entity, item_id, block, changes)
                with session_scope(db_url) as s:
                    after = {r["key"]: r["value"] for r in cards.edit_fields(s, admin, entity, item_id, block)}
                    version = s.get(MODELS[entity], item_id).version
                assert after == form, (entity, item_id, block)
                assert version == card["version"] + 1
                saved += 1
    assert saved >= 4 * 3
    assert all(empty_submitted.values()), empty_submitted  # optional fields really were empty


# ---- every field, every kind ---------------------------------------------------------------

CUSTOM_TYPES = ("string", "text", "number", "money", "bool", "date", "enum", "file")
ODD_VALUES = ("", "abc", "-1", "2,5", "NaN", "Infinity", "1e400", "99999999999999", "2026-13-45", "Нет",
              "x\x00y", "²")
SPECIAL = {"title", "probability", "responsible_id", "program_id"}


@pytest.fixture
def every_kind(db):
    """One item of each entity (a deal per pipeline) and custom fields of every type."""
    with session_scope(db) as s:
        m = f.user(s, "manager1")
        admin = f.user(s, "admin", role="admin", dept_code=None)
        for entity in ("lead", "deal", "contact", "company"):
            for n, ftype in enumerate(CUSTOM_TYPES):
                s.add(CustomField(entity=entity, code=f"t_{ftype}", label=f"Поле {ftype}", field_type=ftype,
                                  options=["Один", "Два"] if ftype == "enum" else [], sort=900 + n))
        ids = [("lead", f.lead(s, "Лид", m).id), ("contact", f.contact(s, "Иванов", "Иван", responsible=m).id),
               ("deal", f.deal(s, "Сделка ДПО", m).id)]
        masters = f.pipeline(s, "masters")
        st = s.exec(select(Stage).where(Stage.pipeline_id == masters.id, Stage.semantic == "process")
                    .order_by(Stage.sort, Stage.id)).first()
        ids.append(("deal", f.deal(s, "Сделка магистратура", m, pipe_code="masters", stage_code=st.code).id))
        company = Company(title="ООО Ромашка", responsible_id=m.id, department_id=m.department_id)
        s.add(company)
        s.flush()
        ids.append(("company", company.id))
        a = actor_for(admin)
    return db, a, ids


def _stored(s, entity: str, item_id: int, key: str):
    item = s.get(MODELS[entity], item_id)
    if key.startswith("custom."):
        return (item.custom or {}).get(key.split(".", 1)[1], "<absent>")
    return getattr(item, key)


def test_every_field_given_an_empty_value_saves_or_is_refused_by_name(every_kind):
    db, admin, ids = every_kind
    seen_kinds, outcomes = set(), {"blank": 0, "null": 0, "required": 0, "not editable": 0}
    for entity, item_id in ids:
        with session_scope(db) as s:
            item = s.get(MODELS[entity], item_id)
            fmap = field_map(s, entity, getattr(item, "pipeline_id", None))
        assert any(k.startswith("custom.t_") for k in fmap)
        for key, fd in fmap.items():
            seen_kinds.add(fd.kind)
            try:
                with session_scope(db) as s:
                    items.update_fields(s, admin, entity, item_id, {key: ""})
            except ValidationFailed as exc:
                assert key in exc.fields, (entity, key, exc.message)
                if items.editable(fd):
                    assert fd.empty == "required", (entity, key, exc.message)
                    assert f"«{fd.label}»: обязательное поле" in exc.message
                    outcomes["required"] += 1
                else:
                    outcomes["not editable"] += 1
                continue
            assert items.editable(fd), (entity, key)
            with session_scope(db) as s:
                stored = _stored(s, entity, item_id, key)
            if key.startswith("custom."):
                assert stored == "<absent>", (entity, key, stored)
            elif fd.empty == "blank":
                assert stored == "", (entity, key, stored)
            else:
                assert stored is None, (entity, key, stored)
            outcomes[fd.empty] += 1
    assert {"text", "money", "number", "int", "date", "enum", "bool", "user", "program"} <= seen_kinds
    assert all(outcomes.values()), outcomes


def test_odd_values_in_every_editable_field_save_or_are_refused(every_kind):
    """Not only empties: whatever is typed, the answer is a save (written to the database:
    flushed) or a ValidationFailed naming the field. One savepoint per attempt."""
    db, admin, ids = every_kind
    refused = saved = 0
    for entity, item_id in ids:
        with session_scope(db) as s:
            item = s.get(MODELS[entity], item_id)
            seen = set()
            for key, fd in field_map(s, entity, getattr(item, "pipeline_id", None)).items():
                # fields that parse alike are tried once per item (the special ones each)
                alike = (fd.kind, fd.empty, key.startswith("custom."), key if key in SPECIAL else "")
                if not items.editable(fd) or alike in seen:
                    continue
                seen.add(alike)
                for raw in ODD_VALUES:
                    try:
                        with s.begin_nested():
                            items.update_fields(s, admin, entity, item_id, {key: raw})
                            s.flush()
                        saved += 1
                    except ValidationFailed as exc:
                        assert key in exc.fields and fd.label in exc.message, (entity, key, raw, exc.message)
                        refused += 1
    assert saved and refused


def test_several_wrong_fields_are_named_together_and_nothing_is_written(every_kind):
    db, admin, ids = every_kind
    deal_id = next(i for e, i in ids if e == "deal")
    with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
        items.update_fields(s, admin, "deal", deal_id, {"probability": "", "amount": "много", "comment": "ок"})
    assert set(err.value.fields) == {"probability", "amount"}
    assert "«Вероятность»: обязательное поле" in err.value.message and "«Сумма»: введите число" in err.value.message
    with session_scope(db) as s:
        assert s.get(Deal, deal_id).comment == ""
    with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
        items.update_fields(s, admin, "deal", deal_id, {"title": "  "})
    assert err.value.message.startswith("«Сделка»: обязательное поле")
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="нельзя изменить"):
        items.update_fields(s, admin, "deal", deal_id, {"id": "1"})
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="программа не найдена"):
        items.update_fields(s, admin, "deal", deal_id, {"program_id": "999999"})


def test_an_unchanged_deactivated_responsible_does_not_block_the_save(every_kind):
    """The «О сделке» form always posts the responsible back: a since deactivated one stays."""
    db, admin, ids = every_kind
    deal_id = next(i for e, i in ids if e == "deal")
    with session_scope(db) as s:
        d = s.get(Deal, deal_id)
        s.get(User, d.responsible_id).is_active = False
        form = {r["key"]: r["value"] for r in cards.edit_fields(s, admin, "deal", deal_id, "О сделке")}
    form["amount"] = "777"
    with session_scope(db) as s:
        assert items.update_fields(s, admin, "deal", deal_id, form) == {"amount": (10000.0, 777.0)}
    form["responsible_id"] = str(admin.user_id + 1000)
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="Ответственный не найден"):
        items.update_fields(s, admin, "deal", deal_id, form)


def test_creating_with_empty_optional_values_saves(every_kind):
    db, admin, ids = every_kind
    with session_scope(db) as s:
        pipe = f.pipeline(s, "dpo")
        deal = create.create_deal(s, admin, pipeline_id=pipe.id, title="Новая", amount="",
                                  values={"comment": "", "close_date": "", "first_payment_amount": "",
                                          "deal_type": ""},
                                  custom={"t_number": "", "t_string": ""})
        deal_id = deal.id
    with session_scope(db) as s:
        d = s.get(Deal, deal_id)
        assert (d.comment, d.close_date, d.first_payment_amount, d.deal_type) == ("", None, None, "")
        assert "t_number" not in (d.custom or {})
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="Вероятность"):
        create.create_deal(s, admin, pipeline_id=pipe.id, title="Ещё", values={"probability": ""})


def test_field_defs_know_what_empty_means():
    """FieldDef.empty follows the model: NOT NULL text → "", nullable → NULL, other NOT NULL → refused."""
    from rxcrm.services.fields import CATALOG
    rules = {e: {fd.key: fd.empty for fd in defs if fd.column} for e, defs in CATALOG.items()}
    assert rules["deal"]["comment"] == rules["lead"]["source"] == rules["contact"]["position"] == "blank"
    assert rules["deal"]["amount"] == rules["deal"]["close_date"] == rules["deal"]["responsible_id"] == "null"
    assert rules["deal"]["probability"] == rules["deal"]["is_repeat"] == rules["deal"]["title"] == "required"
    assert rules["company"]["title"] == "required" and rules["contact"]["birthday"] == "null"
    for entity, defs in CATALOG.items():
        table = MODELS[entity].__table__
        for fd in defs:
            if fd.column and fd.empty == "null":
                assert table.c[fd.column].nullable, (entity, fd.key)
