"""What an import does to the items, chunk by chunk (services/imports.py runs it): `Worker`
matches each row with the items it may be (an external id, our id, a phone, an e-mail, a
name; in the database and earlier in the file), then skips, updates or creates — new leads
and contacts in batches (create.create_leads / create_contacts, the checks of create_lead /
create_contact), everything else one by one in a savepoint, each through the services
every write path uses; `undo_chunk` takes a job's log back, newest first."""
from __future__ import annotations

from collections import ChainMap, Counter

from sqlalchemy import and_, func, insert, select
from sqlmodel import Session

from rxcrm.models import Communication, Company, Contact, ExternalRef, ImportItem, ImportJob, ImportReject, User
from rxcrm.models import imports as st
from rxcrm.models import utcnow

from . import audit, changes, comms, create, entities, import_map, items
from .auth import actor_for
from .context import IMPORT_SOURCE, Actor
from .errors import ServiceError, ValidationFailed
from .fields import field_map
from .records import plain, value_of

DEFAULT_OPTIONS = import_map.DEFAULT_OPTIONS
SOURCE = IMPORT_SOURCE


class BatchRefused(Exception):
    """A batch of new items failed as a whole (a rule refused one of them after the batch was
    written), or a refused row of it had made a contact or a company for its item: the
    chunk's unit is rolled back and worked again `careful`ly, row by row (each row's
    savepoint takes what it made with it)."""


class Worker:
    """Works the rows of one chunk in its unit of work. What identifies a row among the
    items (external ids, phones, e-mails) is looked up for the whole chunk at once; new
    leads and contacts are written together (create.create_leads / create_contacts: the
    checks of create_lead / create_contact, one batched INSERT per table), other rows one
    by one, each in a savepoint.

    The batch has no savepoint of its own: on SQLite a savepoint makes every page the batch
    touches go through the statement journal — an INSERT of 1,400 leads then costs 25× as
    much as without. If the batch fails (BatchRefused) the runner rolls the whole unit back
    and works the chunk again with `careful`: each new item alone, in its own savepoint, so
    that only the refused row is refused (services/imports.py `work_chunk`)."""

    BULK = ("lead", "contact", "deal")  # entities whose new items are written in batches

    def __init__(self, s: Session, job: ImportJob, actor: Actor, reader: import_map.Reader, seen: dict,
                 careful: bool = False):
        self.s, self.job, self.actor, self.reader, self.seen = s, job, actor, reader, seen
        self.careful = careful
        self.entity = job.entity
        self.o = {**DEFAULT_OPTIONS, **(job.options or {})}
        self.counts: Counter = Counter()
        self.rejects: list[ImportReject] = []
        self.pending: list[tuple] = []  # (row, cells, repeat) of new items not yet written
        self.pending_rows: set[int] = set()
        self.known: dict[tuple[str, str], int] = {}  # (kind, key) → the live item it names
        self.side_made: set[int] = set()  # rows that made a client (a contact, a company) for their item

    def rows(self, batch: list) -> None:
        read = [(self.reader.row(number, cells), cells) for number, cells in batch]
        self._prefetch([r for r, _c in read if not r.errors])
        for r, cells in read:
            self.row(r, cells)
        self._flush()

    # -- one row
    def row(self, r, cells: list) -> None:
        if r.errors:
            return self._reject(r, cells, [self._error(k, v, m) for k, v, m in r.errors])
        if self.pending and any(self.seen.get(k) in self.pending_rows for k in self._keys(r)):
            self._flush()  # it repeats a row not yet written: write that first
        try:
            found, why = self._match(r)
        except ServiceError as exc:
            return self._reject(r, cells, self._errors(exc, r))
        dup = self.o["duplicates"]
        if found is not None and (dup == "update" or why in ("id", "external_id") and dup == "create"):
            return self._do(r, cells, "updated", lambda: self._update(found, r))
        if found is not None and dup == "skip":
            return self._skip(r, cells, why)
        if r.item_id is not None:
            return self._reject(r, cells, [self._error("id", str(r.item_id),
                                                       entities.ENTITIES[self.entity].not_found(r.item_id))])
        if why == "row" and dup == "skip":
            return self._skip(r, cells, why)
        repeat = found is not None or why == "row"
        if self.entity in self.BULK and not self.careful:
            self.pending.append((r, cells, repeat))
            self.pending_rows.add(r.number)
            self._remember(r, None)
            return
        self._do(r, cells, "created", lambda: self._create(r, repeat=repeat))

    def _flush(self) -> None:
        """Write the pending new items together (one refused by its own checks is its
        row's reason); if the batch as a whole fails, BatchRefused (see the class)."""
        batch, self.pending, self.pending_rows = self.pending, [], set()
        if not batch:
            return
        spec, write = {"lead": (self._lead_spec, create.create_leads),
                       "contact": (self._contact_spec, create.create_contacts),
                       "deal": (self._deal_spec, create.create_deals)}[self.entity]
        try:
            made = write(self.s, self.actor, [spec(r) for r, _c, _rep in batch])
        except ServiceError as exc:
            raise BatchRefused(exc.message) from exc
        refused = {r.number for (r, _c, _rep), item in zip(batch, made) if isinstance(item, ServiceError)}
        if refused & self.side_made:  # a refused row made a contact or company: it must go with the row
            raise BatchRefused("a refused row made a client")
        logs, refs = [], []
        for (r, cells, repeat), item in zip(batch, made):
            if isinstance(item, ServiceError):
                self._forget(r)
                self._reject(r, cells, self._errors(item, r))
                continue
            if repeat and hasattr(item, "is_repeat"):
                item.is_repeat = True
            self.counts["created"] += 1
            logs.append(dict(job_id=self.job.id, row=r.number, entity_type=self.entity, entity_id=item.id,
                             action="created", before={}, after={}))
            if r.external_id:
                refs.append((item.id, r.external_id))
        if logs:
            self.s.execute(insert(ImportItem.__table__), logs)
        self._externals(refs)

    def _forget(self, r) -> None:
        mine = self.seen.maps[0] if isinstance(self.seen, ChainMap) else self.seen
        for key in self._keys(r):
            if mine.get(key) == r.number:
                del mine[key]

    def _do(self, r, cells, action: str, fn) -> None:
        sp = self.s.begin_nested()
        try:
            changed = fn()
            sp.commit()
        except ServiceError as exc:
            sp.rollback()
            return self._reject(r, cells, self._errors(exc, r))
        if action == "updated" and not changed:
            return self._skip(r, cells, "same")
        self.counts[action] += 1
        self._remember(r, changed if action == "created" else None)

    _WHY = {"same": "Без изменений", "phone": "Дубликат по телефону", "email": "Дубликат по e-mail",
            "name": "Дубликат по названию", "id": "Запись уже есть",
            "external_id": "Уже загружен (тот же внешний ID)"}

    def _skip(self, r, cells, why: str) -> None:
        self.counts["skipped"] += 1
        text = f"Повтор строки {self._first_row(r)}" if why == "row" else self._WHY.get(why, "Дубликат")
        self.rejects.append(ImportReject(job_id=self.job.id, dry_run=self.job.dry_run, row=r.number, skipped=True,
                                         values=[import_map.cell_text(c) for c in cells],
                                         errors=[{"column": "", "value": "", "message": text}]))

    def _reject(self, r, cells, errors: list[dict]) -> None:
        self.counts["rejected"] += 1
        self.rejects.append(ImportReject(job_id=self.job.id, dry_run=self.job.dry_run, row=r.number,
                                         values=[import_map.cell_text(c) for c in cells], errors=errors))

    def _error(self, key: str, value: str, message: str) -> dict:
        return {"column": self.reader.column(key), "value": value, "message": message}

    def _errors(self, exc: ServiceError, r) -> list[dict]:
        keys = list((getattr(exc, "fields", None) or {}).keys())
        details = getattr(exc, "details", None) or {}
        if details.get("missing"):
            keys = [m["key"] for m in details["missing"]]
        key = next((k for k in keys if self.reader.column(k)), keys[0] if keys else "")
        value = r.raw.get(key, "") if key else ""
        if key in ("phones", "emails"):
            value = ", ".join(v for v, _t in (r.phones if key == "phones" else r.emails))
        return [{"column": self.reader.column(key) if key else "", "value": value, "message": exc.message}]

    # -- duplicates
    def _keys(self, r) -> list[int]:
        """What the row is matched by among the file's earlier rows (`seen`: key → the first
        row that had it), as 64-bit hashes of (kind, value): a file of 100k rows keeps ~33 MB
        of them instead of ~58 MB of tuples (a collision would take ~10⁹ such files)."""
        keys = []
        if r.external_id:
            keys.append(("external_id", r.external_id))
        if r.item_id is not None:
            keys.append(("id", str(r.item_id)))
        match = self.o["match"]
        if "phone" in match:
            keys += [("phone", k) for k in r.phone_norms]
        if "email" in match:
            keys += [("email", k) for k in r.email_norms]
        if "name" in match:
            name = import_map.name_key(self.entity, r)
            if name:
                keys.append(("name", name))
        return [hash(k) for k in keys]

    def _first_row(self, r) -> int | str:
        for key in self._keys(r):
            if key in self.seen and self.seen[key] != r.number:
                return self.seen[key]
        return ""

    def _remember(self, r, item) -> None:
        for key in self._keys(r):
            self.seen.setdefault(key, r.number)

    def _prefetch(self, rows: list) -> None:
        """The live items the chunk's external ids, phones and e-mails name: three queries
        for the chunk instead of three per row."""
        model = entities.MODELS[self.entity]
        ext = list({r.external_id for r in rows if r.external_id})
        if ext:
            for eid, item_id in self.s.execute(
                    select(ExternalRef.external_id, ExternalRef.entity_id).join(model, model.id == ExternalRef.entity_id)
                    .where(ExternalRef.entity_type == self.entity, ExternalRef.external_id.in_(ext),
                           model.deleted_at.is_(None))):
                self.known[("external_id", eid)] = item_id
        for kind in ("phone", "email"):
            if kind not in self.o["match"]:
                continue
            keys = list({k for r in rows for k in (r.phone_norms if kind == "phone" else r.email_norms)})
            for i in range(0, len(keys), 500):
                for norm, item_id in self.s.execute(
                        select(Communication.norm, func.min(Communication.entity_id))
                        .join(model, model.id == Communication.entity_id)
                        .where(Communication.entity_type == self.entity, Communication.kind == kind,
                               Communication.norm.in_(keys[i:i + 500]), model.deleted_at.is_(None))
                        .group_by(Communication.norm)):
                    self.known[(kind, norm)] = item_id

    def _match(self, r) -> tuple[int | None, str]:
        """The existing item this row is (its id, and by what), or (None, "row") when an
        earlier row of the file was the same, or (None, "")."""
        model = entities.MODELS[self.entity]
        if r.item_id is not None:
            item = self.s.get(model, r.item_id)
            if item is not None and item.deleted_at is None:
                return item.id, "id"
            return None, ""
        if r.external_id and ("external_id", r.external_id) in self.known:
            return self.known[("external_id", r.external_id)], "external_id"
        in_file = any(key in self.seen for key in self._keys(r))  # an earlier row of the file was the same
        for kind, values in (("phone", r.phone_norms), ("email", r.email_norms)):
            if kind in self.o["match"]:
                found = [self.known[(kind, v)] for v in values if (kind, v) in self.known]
                if found:
                    return min(found), "row" if in_file else kind
        if "name" in self.o["match"]:
            found = self._by_name(r)
            if found is not None:
                return found, "row" if in_file else "name"
        if in_file and self.o["duplicates"] == "update":  # the item an earlier row of this chunk made
            found = self._written_by_earlier_row(r)
            if found is not None:
                return found, "row"
        return None, "row" if in_file else ""

    def _written_by_earlier_row(self, r) -> int | None:
        model = entities.MODELS[self.entity]
        if r.external_id:
            found = self.s.execute(select(ExternalRef.entity_id).where(
                ExternalRef.entity_type == self.entity, ExternalRef.external_id == r.external_id)).scalar()
            if found is not None:
                return found
        for kind, values in (("phone", r.phone_norms), ("email", r.email_norms)):
            if kind in self.o["match"] and values:
                found = self.s.execute(
                    select(func.min(Communication.entity_id)).join(model, model.id == Communication.entity_id)
                    .where(Communication.entity_type == self.entity, Communication.kind == kind,
                           Communication.norm.in_(values), model.deleted_at.is_(None))).scalar()
                if found is not None:
                    return found
        return None

    def _by_name(self, r) -> int | None:
        model = entities.MODELS[self.entity]
        if self.entity == "contact":
            full = create.contact_full_name(*r.names())
            cond = model.full_name == full if full else None
        elif self.entity == "lead":
            last, first, middle = r.names()
            cond = and_(model.last_name == last, model.first_name == first, model.middle_name == middle) \
                if (last or first) else (model.title == r.values.get("title", "") if r.values.get("title") else None)
        else:
            title = r.values.get("title", "")
            cond = model.title == title if title else None
        if cond is None:
            return None
        return self.s.execute(select(func.min(model.id)).where(cond, model.deleted_at.is_(None))).scalar()

    # -- create
    def _split(self, r) -> tuple[dict, dict, dict]:
        """A row's values as the creators take them: (the rest by catalog key, the arguments
        every creator has — responsible, custom fields, creation date —, the UTM marks)."""
        v = dict(r.values)
        resp = v.pop("responsible_id", None) or self.o.get("responsible_id")
        custom = {k.split(".", 1)[1]: v.pop(k) for k in [k for k in v if k.startswith("custom.")]}
        utm = {k: v.pop(k) for k in [k for k in v if k.startswith("utm_")]}
        return v, dict(responsible_id=int(resp) if resp else None, custom=custom, created_at=r.created_at), utm

    def _create(self, r, *, repeat: bool):
        s, a, e = self.s, self.actor, self.entity
        v, common, utm = self._split(r)
        if e == "lead":
            item = create.create_lead(s, a, **self._lead_spec(r))
        elif e == "deal":
            item = create.create_deal(s, a, **self._deal_spec(r))
        elif e == "contact":
            item = create.create_contact(s, a, **self._contact_spec(r))
        else:
            item = create.create_company(
                s, a, title=v.pop("title", ""), phones=r.phones, emails=r.emails, inn=v.pop("inn", ""),
                industry=v.pop("industry", ""), address=v.pop("address", ""), website=r.website,
                comment=v.pop("comment", ""), values=v, **common)
        if repeat and hasattr(item, "is_repeat"):
            item.is_repeat = True
        if r.closed_at is not None and getattr(item, "semantic", "process") != "process":
            item.closed_at = r.closed_at
        self._log(r, e, item.id, "created")
        if r.external_id:
            self._externals([(item.id, r.external_id)])
        return item

    def _deal_spec(self, r) -> dict:
        """create_deal's arguments for a row (its client found, or made: `_client`)."""
        v, common, utm = self._split(r)
        contact_id, company_id = self._client(r)
        return dict(pipeline_id=r.pipeline_id, title=v.pop("title", ""), contact_id=contact_id,
                    company_id=company_id, program_id=v.pop("program_id", None), amount=v.pop("amount", None),
                    source=v.pop("source", "") or "Импорт", utm=utm, stage_id=r.stage.id if r.stage else None,
                    comment=v.pop("comment", ""), values=v, allow_final=True, closed_at=r.closed_at, **common)

    def _contact_spec(self, r) -> dict:
        """create_contact's arguments for a row (its company found by name, or made)."""
        v, common, _utm = self._split(r)
        last, first, middle = (v.pop(k, "") for k in ("last_name", "first_name", "middle_name"))
        return dict(last_name=last, first_name=first, middle_name=middle, phones=r.phones, emails=r.emails,
                    company_id=self._company(r.company, r), position=v.pop("position", ""),
                    birthday=v.pop("birthday", None) or None, source=v.pop("source", "") or "Импорт",
                    comment=v.pop("comment", ""), values=v, **common)

    def _lead_spec(self, r) -> dict:
        """create_lead's arguments for a row."""
        v, common, utm = self._split(r)
        last, first, middle = (v.pop(k, "") for k in ("last_name", "first_name", "middle_name"))
        return dict(title=v.pop("title", ""), last_name=last, first_name=first, middle_name=middle,
                    phones=r.phones, emails=r.emails, source=v.pop("source", "") or "Импорт",
                    program_id=v.pop("program_id", None), amount=v.pop("amount", None), comment=v.pop("comment", ""),
                    utm=utm, company_title=v.pop("company_title", ""), position=v.pop("position", ""),
                    stage_code=r.stage.code if r.stage else None, allow_final=True, values=v,
                    closed_at=r.closed_at, **common)

    def _client(self, r) -> tuple[int | None, int | None]:
        """A deal's contact: the one with the row's phone / e-mail, else the only one with
        its name, else a new one (created by this import); its company likewise by name."""
        company_id = self._company(r.company, r)
        c = r.contact
        if not c:
            return None, company_id
        found = create.find_contact(self.s, c["phones"], c["emails"])
        if found is not None:
            return found[0].id, company_id
        if c["name"]:
            ids = self.s.execute(select(Contact.id).where(Contact.full_name == c["name"],
                                                          Contact.deleted_at.is_(None)).limit(2)).scalars().all()
            if len(ids) == 1:
                return ids[0], company_id
        if not (c["name"] or c["phones"] or c["emails"]):
            return None, company_id
        last, first, middle = import_map.split_name(c["name"]) if c["name"] else ("", c["phones"][0] if c["phones"]
                                                                                  else c["emails"][0], "")
        contact = create.create_contact(self.s, self.actor, last_name=last, first_name=first, middle_name=middle,
                                        phones=c["phones"], emails=c["emails"], company_id=company_id,
                                        source="Импорт")
        self._log(r, "contact", contact.id, "created")
        self.side_made.add(r.number)
        return contact.id, company_id

    def _company(self, title: str, r=None) -> int | None:
        if not title:
            return None
        found = self.s.execute(select(func.min(Company.id)).where(Company.title == title,
                                                                  Company.deleted_at.is_(None))).scalar()
        if found is not None:
            return found
        company = create.create_company(self.s, self.actor, title=title)
        if r is not None:
            self.side_made.add(r.number)
        self._log(None, "company", company.id, "created")
        return company.id

    def _log(self, r, entity: str, item_id: int, action: str, before: dict | None = None,
             after: dict | None = None) -> None:
        self.s.add(ImportItem(job_id=self.job.id, row=r.number if r else 0, entity_type=entity, entity_id=item_id,
                              action=action, before=before or {}, after=after or {}))

    def _externals(self, refs: list[tuple[int, str]]) -> None:
        """External ids of new items: a ref whose item is gone (deleted) names the new one."""
        first: dict[str, int] = {}
        for item_id, ext in refs:
            first.setdefault(ext, item_id)  # a file that repeats an id: its first row keeps it
        if not first:
            return
        refs = [(i, e) for e, i in first.items()]
        ids = list(first)
        self.s.execute(ExternalRef.__table__.delete().where(ExternalRef.entity_type == self.entity,
                                                            ExternalRef.external_id.in_(ids)))
        self.s.execute(insert(ExternalRef.__table__), [dict(entity_type=self.entity, external_id=e, entity_id=i,
                                                  job_id=self.job.id) for i, e in refs])

    # -- update
    def _update(self, item_id: int, r) -> bool:
        """Fill the found item from the row: only its empty fields, or overwrite (options);
        phones and e-mails it lacks are added; the stage moves only when overwriting."""
        s, e = self.s, self.entity
        item = s.get(entities.MODELS[e], item_id)
        overwrite = self.o["update_mode"] == "overwrite"
        values = {k: x for k, x in r.values.items() if x != ""}
        if e == "contact":
            values.pop("last_name", None), values.pop("first_name", None), values.pop("middle_name", None)
        fmap = field_map(s, e, getattr(item, "pipeline_id", None))
        wanted = {}
        for key, text in values.items():
            fd = fmap.get(key)
            if not items.editable(fd):
                continue
            new = items.parse_value(fd, text)
            old = value_of(item, key)
            if plain(old) == plain(new) or (not overwrite and old not in (None, "", 0)):
                continue
            wanted[key] = text
        before = {k: plain(value_of(item, k)) for k in wanted}
        if wanted:
            items.update_fields(s, self.actor, e, item.id, wanted)
        after = {k: plain(value_of(item, k)) for k in wanted}
        added = {}
        for kind, given in (("phone", r.phones), ("email", r.emails)):
            if not given or e == "deal":
                continue
            have = {c.norm for c in comms.of(s, e, [item.id], kind).get(item.id, [])}
            keys = import_map.phone_keys(given) if kind == "phone" else import_map.email_keys(given)
            new_ops = [comms.Op(value=v, value_type=t) for (v, t), k in zip(given, keys) if k not in have]
            if new_ops and (overwrite or not have):
                old_ids = {c.id for c in comms.of(s, e, [item.id], kind).get(item.id, [])}
                comms.change(s, self.actor, e, item.id, kind, new_ops, item=item)
                added[kind] = [c.id for c in comms.of(s, e, [item.id], kind).get(item.id, []) if c.id not in old_ids]
        if r.stage is not None and overwrite and getattr(item, "stage_id", None) not in (None, r.stage.id):
            if r.stage.pipeline_id != item.pipeline_id:
                raise ValidationFailed(f"Стадия «{r.stage.name}» из другой воронки", fields={"stage_id": "Не та воронка"})
            before["stage_id"] = item.stage_id
            items.move_stage(s, self.actor, e, item.id, r.stage.id, allow_final=True)
            after["stage_id"] = r.stage.id
        if r.external_id:
            ref = s.execute(select(ExternalRef.id).where(ExternalRef.entity_type == e,
                                                         ExternalRef.external_id == r.external_id)).scalar()
            if ref is None:
                self._externals([(item.id, r.external_id)])
        if not (wanted or added or "stage_id" in after):
            return False
        self._log(r, e, item.id, "updated", {**before, **({"_added": added} if added else {})}, after)
        return True


# ---- undo ---------------------------------------------------------------------------------------
UNDO_CHUNK = 200


def undo_chunk(s: Session, job_id: int) -> str:
    """Undo the next log rows, newest first (what a later row did goes before what an
    earlier one did). `done_row` counts the rows undone."""
    job = s.get(ImportJob, job_id)
    user = s.get(User, job.undone_by_id or job.user_id)
    actor = actor_for(user, source=SOURCE, client=f"Отмена импорта №{job.id}"[:200])
    q = select(ImportItem).where(ImportItem.job_id == job.id).order_by(ImportItem.id.desc())
    logs = s.execute(q.offset(job.done_row).limit(UNDO_CHUNK)).scalars().all()
    by_entity: dict[str, list[int]] = {}
    for entry in logs:
        by_entity.setdefault(entry.entity_type, []).append(entry.entity_id)
    loaded = [s.execute(select(entities.MODELS[e]).where(entities.MODELS[e].id.in_(ids))).scalars().all()
              for e, ids in by_entity.items()]  # one query per kind, not one per item (kept: the map holds weakly)
    kept = 0
    with changes.coalesced(s):
        for entry in logs:
            kept += _undo_one(s, actor, entry)
    del loaded
    job.done_row += len(logs)
    job.heartbeat_at = utcnow()
    if kept:
        job.message = f"{job.message.split(';')[0] if job.message else ''}".strip()
        job.check = {**(job.check or {}), "kept": (job.check or {}).get("kept", 0) + kept}
    if len(logs) < UNDO_CHUNK:
        s.execute(ExternalRef.__table__.delete().where(ExternalRef.job_id == job.id))
        job.status, job.undone_at = st.UNDONE, utcnow()
        left = (job.check or {}).get("kept", 0)
        job.message = f"Изменены после импорта и оставлены как есть: {left}" if left else ""
        audit.record(s, actor, "import_undone", job.entity, None, {"job_id": job.id, "kept": left})
    s.add(job)
    return job.status


def _undo_one(s: Session, actor: Actor, entry: ImportItem) -> int:
    """1 when the item was changed after the import and is left as it is."""
    model = entities.MODELS[entry.entity_type]
    item = s.get(model, entry.entity_id)
    if item is None or item.deleted_at is not None:
        return 0
    if entry.action == "created":
        items.delete_item(s, actor, entry.entity_type, item.id)
        return 0
    kept = 0
    before, after = dict(entry.before or {}), dict(entry.after or {})
    added = before.pop("_added", {})
    stage_before = before.pop("stage_id", None)
    restore = {}
    for key, old in before.items():
        if plain(value_of(item, key)) == after.get(key):
            restore[key] = "" if old is None else str(old)
        else:
            kept = 1
    if restore:
        items.update_fields(s, actor, entry.entity_type, item.id, restore)
    for kind, ids in added.items():
        present = {c.id for c in comms.of(s, entry.entity_type, [item.id], kind).get(item.id, [])}
        ops = [comms.Op(id=i, delete=True) for i in ids if i in present]
        if ops:
            comms.change(s, actor, entry.entity_type, item.id, kind, ops, item=item)
    if stage_before is not None:
        if item.stage_id == after.get("stage_id"):
            items.move_stage(s, actor, entry.entity_type, item.id, stage_before, allow_final=True)
        else:
            kept = 1
    return kept


__all__ = ["UNDO_CHUNK", "Worker", "undo_chunk"]
