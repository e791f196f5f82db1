"""State of /settings: users, departments, the access matrix, integrations and rules (admins)
and the recycle bin (admins; heads for their department).

What the services return is kept with its codes in backend vars (`_users`, `_matrix`…); the
rows and option lists a screen shows are computed vars that read `lang` and name each code
from the catalog, so switching the language relabels the page at once. The on-enter rule
form is drawn from the chosen action plug-in's `form` (`rule_form`): a new action module in
rxcrm/rules/actions/ brings its own inputs here."""
from __future__ import annotations

import dataclasses

import reflex as rx
from sqlmodel import select

from rxcrm import i18n
from rxcrm.models import Pipeline, Stage
from rxcrm.models.integration import INTEGRATIONS
from rxcrm.rules import automation
from rxcrm.models.rest import OUTBOUND_EVENTS
from rxcrm.services import admin, entities, fmt, intake, outbound, recycle, rules_admin, webhooks

from .app import AppState
from .base import choice, event, field, opt_id, to_bool, to_form, to_id, to_text
from .work import Option

SETTINGS_TABS = ("users", "depts", "matrix", "integrations", "rules", "bin", "dups", "imports")  # dups: state/duplicates.py, imports: state/imports.py
ITEM_ENTITIES = entities.ITEM_ENTITIES


@dataclasses.dataclass
class UserRow:
    id: int = 0
    login: str = ""
    full_name: str = ""
    role_label: str = ""
    department: str = ""
    is_active: bool = True
    is_self: bool = False
    last_login: str = ""
    role: str = ""


@dataclasses.dataclass
class DeptRow:
    id: int = 0
    name: str = ""
    head: str = ""
    users: int = 0


@dataclasses.dataclass
class MatrixCell:
    role: str = ""
    entity: str = ""
    action: str = ""
    level: str = ""


@dataclasses.dataclass
class MatrixRow:
    role: str = ""
    role_label: str = ""
    entity: str = ""
    entity_label: str = ""
    cells: list[MatrixCell] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class BinRow:
    entity: str = ""
    entity_label: str = ""
    id: int = 0
    title: str = ""
    deleted_at: str = ""
    deleted_by: str = ""
    department: str = ""


@dataclasses.dataclass
class TokenRow:
    id: int = 0
    label: str = ""
    name: str = ""
    created_at: str = ""
    active: bool = True
    integration: str = ""


@dataclasses.dataclass
class HookRow:
    """An inbound REST webhook: its URL without the code (shown once, when created)."""
    id: int = 0
    name: str = ""
    user: str = ""
    scopes: str = ""
    path: str = ""
    created_at: str = ""
    used_at: str = ""
    active: bool = True


@dataclasses.dataclass
class BindingRow:
    """An outbound event subscription: the event, the receiver's URL, deliveries waiting."""
    id: int = 0
    event: str = ""
    handler: str = ""
    name: str = ""
    created_at: str = ""
    pending: int = 0
    active: bool = True


@dataclasses.dataclass
class DeliveryRow:
    id: int = 0
    event: str = ""
    item: str = ""
    status: str = ""
    attempts: int = 0
    at: str = ""
    error: str = ""


@dataclasses.dataclass
class EventRow:
    id: int = 0
    integration: str = ""
    event_id: str = ""
    event_type: str = ""
    received_at: str = ""
    status: str = ""
    error: str = ""


@dataclasses.dataclass
class RuleRow:
    kind: str = ""
    name: str = ""
    text: str = ""
    id: int = 0  # 0 = not an automation_rule row (the activity discipline): not editable here
    active: bool = True
    kind_code: str = ""
    text_en: str = ""  # `text` in English (what the state loaded; `rules` shows the one of the language)


@dataclasses.dataclass
class FormRow:
    """One input of the on-enter rule form, from the action plug-in's FormField: `key` is the
    submitted form key, `kind` text | int | choice | field | field_value, `uid` the action and
    key together (another action's inputs are new inputs, never the last one's reused)."""
    uid: str = ""
    key: str = ""
    label: str = ""
    kind: str = "text"
    placeholder: str = ""
    default: str = ""
    width: str = "200px"
    options: list[Option] = dataclasses.field(default_factory=list)


# the width of a form input by its kind (the label sits above it)
FORM_WIDTH = {"text": "300px", "int": "130px", "choice": "190px", "field": "220px", "field_value": "180px"}


class SettingsState(AppState):
    settings_tab: str = "users"
    depts: list[DeptRow] = []
    dept_options: list[Option] = []
    user_options: list[Option] = []
    bin_total: int = 0
    settings_error: str = ""
    intake_events: list[EventRow] = []
    intake_waiting: int = 0  # stored events not processed yet (status "received")
    new_token: str = ""
    new_hook_url: str = ""  # the address of the webhook just created (shown once)
    hooks: list[HookRow] = []
    event_bindings: list[BindingRow] = []
    deliveries: list[DeliveryRow] = []
    outbound_events: list[str] = list(OUTBOUND_EVENTS)
    stage_options: list[Option] = []  # "pipeline:STAGE" — every stage of every pipeline
    # the rules editor picks fields and values from lists (rules_admin.field_choices), by pipeline code
    rule_fields: dict[str, list[Option]] = {}      # pipeline code → fields a person can fill
    rule_field_values: dict[str, list[str]] = {}   # "pipeline:field" → its values (enum options, yes/no)
    req_stage: str = ""                            # required fields: the stage…
    req_fields: list[str] = []                     # …and the fields chosen so far
    trig_stage: str = ""                           # a move by a field's value: from stage ("pipeline:" = any)
    trig_field: str = ""
    enter_stage: str = ""                          # on entering a stage: the stage
    enter_field: str = ""                          # (the field of a "field" input of the action's form)
    rule_action: str = "activity"  # the action of a new on-enter rule (a code of rules/actions)
    user_dialog: bool = False
    password_dialog: bool = False
    reassign_dialog: bool = False
    target_user_id: int = 0
    target_user_name: str = ""
    # what the services returned, with codes; the computed vars below name them in `lang`
    _users: list[UserRow] = []
    _matrix: list[MatrixRow] = []
    _bin_rows: list[BinRow] = []
    _tokens: list[TokenRow] = []
    _rules: list[RuleRow] = []
    _discipline_days: int = 0

    @rx.var
    def is_admin(self) -> bool:
        return self.user_role == "admin"

    @rx.var
    def can_clean(self) -> bool:
        """Admins and heads: the duplicates and the imports tabs."""
        return self.user_role in ("admin", "head")

    # ---- rows and lists in the person's language ------------------------------------------
    # (each var reads `self.lang` itself, so Reflex recomputes it when the language changes;
    # `self._tr` may then be called in it too)
    @rx.var
    def users(self) -> list[UserRow]:
        cat = i18n.catalog(self.lang)
        return [dataclasses.replace(u, role_label=cat.get(f"role.{u.role}", u.role_label)) for u in self._users]

    @rx.var
    def role_options(self) -> list[Option]:
        cat = i18n.catalog(self.lang)
        return [Option(code, cat.get(f"role.{code}", label)) for code, label in admin.matrix_labels()["roles"]]

    @rx.var
    def level_options(self) -> list[Option]:
        cat = i18n.catalog(self.lang)
        return [Option(code, cat.get(f"settings.level.{code}", label))
                for code, label in admin.matrix_labels()["levels"]]

    @rx.var
    def action_labels(self) -> list[str]:
        cat = i18n.catalog(self.lang)
        return [cat.get(f"settings.perm.{code}", label) for code, label in admin.matrix_labels()["actions"]]

    @rx.var
    def matrix(self) -> list[MatrixRow]:
        cat = i18n.catalog(self.lang)
        return [dataclasses.replace(r, role_label=cat.get(f"role.{r.role}", r.role_label),
                                    entity_label=cat.get(f"nav.{_plural(r.entity)}", r.entity_label))
                for r in self._matrix]

    @rx.var
    def bin_rows(self) -> list[BinRow]:
        cat = i18n.catalog(self.lang)
        return [dataclasses.replace(b, entity_label=cat.get(f"acts.entity.{b.entity}", b.entity_label))
                for b in self._bin_rows]

    @rx.var
    def integration_options(self) -> list[Option]:
        cat = i18n.catalog(self.lang)
        return [Option(code, cat.get(f"settings.integration.{code}", code)) for code in INTEGRATIONS]

    @rx.var
    def tokens(self) -> list[TokenRow]:
        cat = i18n.catalog(self.lang)
        return [dataclasses.replace(t, label=cat.get(f"settings.integration.{t.integration}", t.label))
                for t in self._tokens]

    @rx.var
    def rules(self) -> list[RuleRow]:
        """The rules (automation_rule rows, then the activity discipline of rules/automation.py)
        in words a supervisor reads."""
        lang = self.lang
        cat = i18n.catalog(lang)
        out = [dataclasses.replace(r, kind=cat.get(f"settings.rules.kind.{r.kind_code}", r.kind),
                                   text=r.text_en if lang == "en" and r.text_en else r.text) for r in self._rules]
        out.append(RuleRow(self._tr("settings.rules.kind.discipline"), self._tr("settings.rules.discipline.name"),
                           self._tr("settings.rules.discipline.text", days=self._discipline_days),
                           kind_code="discipline"))
        return out

    @rx.var
    def rule_action_options(self) -> list[Option]:
        """The on-enter actions — every plug-in of rxcrm/rules/actions/ — by name."""
        en = self.lang == "en"
        return [Option(code, label_en if en else label) for code, label, label_en in rules_admin.action_choices()]

    @rx.var
    def rule_form(self) -> list[FormRow]:
        """The inputs of the chosen action's form, from its plug-in (rules_admin.action_form)."""
        en, action = self.lang == "en", self.rule_action
        pick = self._tr("settings.rules.pick")
        rows = []
        for f in rules_admin.action_form(action):
            kind = f["kind"] if f["kind"] in FORM_WIDTH else "text"
            placeholder = f["placeholder_en"] if en else f["placeholder"]
            if not placeholder and kind in ("choice", "field"):
                placeholder = pick  # a select says it waits for a choice
            rows.append(FormRow(uid=f"{action}:{f['key']}", key=f["key"], label=f["label_en"] if en else f["label"],
                                kind=kind, placeholder=placeholder, default=f["default"], width=FORM_WIDTH[kind],
                                options=[Option(v, lab) for v, lab in (f["options_en"] if en else f["options"])]))
        return rows

    # ---- loading -----------------------------------------------------------------------------
    @event
    def on_load(self):
        actor = self._require_actor()
        self.settings_error = ""
        if actor.role not in ("admin", "head"):
            self.settings_error = self._tr("settings.denied")
            return
        if actor.role != "admin":
            self.settings_tab = "bin"
        self._load()

    def _load(self) -> None:
        self._read(self._fill)

    def _fill(self, s, actor) -> None:
        if actor.role == "admin":
            self._users = [UserRow(u["id"], u["login"], u["full_name"], u["role_label"], u["department"],
                                   u["is_active"], u["is_self"], u["last_login"], u["role"])
                           for u in admin.list_users(s, actor)]
            depts = admin.list_departments(s, actor)
            self.depts = [DeptRow(d["id"], d["name"], d["head"], d["users"]) for d in depts]
            self.dept_options = [Option(str(d["id"]), d["name"]) for d in depts]
            labels = admin.matrix_labels()
            self.user_options = [Option(str(u.id), u.full_name) for u in self._users if u.is_active]
            self._tokens = [TokenRow(tok["id"], tok["label"], tok["name"] or "—", fmt.dt_short(tok["created_at"]),
                                     tok["revoked_at"] is None, tok["integration"])
                            for tok in intake.list_tokens(s, actor)]
            self.intake_events = [EventRow(e.id, e.integration, e.event_id, e.event_type,
                                           fmt.dt_short(e.received_at), e.status, (e.error or "")[:200])
                                  for e in intake.events(s, actor, limit=30)]
            self.intake_waiting = intake.pending_count(s)
            self.event_bindings = [BindingRow(b["id"], b["event"], b["handler"], b["name"] or "—",
                                              fmt.dt_short(b["created_at"]), b["pending"], b["active"])
                                   for b in outbound.bindings(s, actor)]
            self.deliveries = [DeliveryRow(d.id, d.event, f"{entities.label(d.entity_type, d.entity_type)} №{d.entity_id}",
                                           d.status, d.attempts,
                                           fmt.dt_short(d.delivered_at or d.created_at), (d.last_error or "")[:200])
                               for d in outbound.deliveries(s, actor)]
            self.hooks = [HookRow(h["id"], h["name"], h["user"], ", ".join(h["scopes"]), h["path"],
                                  fmt.dt_short(h["created_at"]),
                                  fmt.dt_short(h["last_used_at"]) if h["last_used_at"] else "", h["active"])
                          for h in webhooks.listing(s, actor)]
            self._rules = [RuleRow(r["kind_label"], r["name"], r["text"], r["id"], r["is_active"], r["kind"],
                                   r["text_en"]) for r in rules_admin.list_rules(s)]
            self._discipline_days = automation.ACTIVITY_DISCIPLINE.get("max_working_days_after_last_contact", 5)
            self.stage_options = _stage_options(s)
            choices = rules_admin.field_choices(s)
            self.rule_fields = {code: [Option(r["key"], r["label"]) for r in rows] for code, rows in choices.items()}
            self.rule_field_values = {f"{code}:{r['key']}": list(r["options"]) for code, rows in choices.items()
                                      for r in rows if r["options"]}
            m = admin.permission_matrix(s, actor)
            self._matrix = [MatrixRow(r, rl, e, el, [MatrixCell(r, e, a, m[r][e][a]) for a, _ in labels["actions"]])
                            for r, rl in labels["roles"] for e, el in labels["entities"]]
        if not recycle.can_view(actor):
            self._bin_rows, self.bin_total = [], 0
            return
        rows, total = recycle.deleted_items(s, actor, limit=100)
        self._bin_rows = [BinRow(r["entity"], r["entity_label"], r["id"], r["title"], r["deleted_at"],
                                 r["deleted_by"], r["department"]) for r in rows]
        self.bin_total = total

    def _do(self, fn, ok: str):
        """One admin operation `fn(session, actor)`, then the page is read again."""
        self._call(fn)
        self._load()
        return rx.toast.success(ok)

    @event
    def set_settings_tab(self, tab: str | list[str]):
        self.settings_tab = choice(tab, SETTINGS_TABS, self._tr("settings.what.tab"))

    # users
    @event
    def set_user_dialog(self, value: bool):
        self.user_dialog = to_bool(value)

    @event
    def create_user(self, form: dict):
        form = to_form(form)
        login = field(form, "login", self._tr("settings.what.login"), 100)
        result = self._do(lambda s, a: admin.create_user(
            s, a, login=login, full_name=field(form, "full_name", self._tr("settings.what.full_name"), 200),
            password=field(form, "password", self._tr("settings.what.password"), 200),
            role=field(form, "role", self._tr("settings.what.role"), 50) or "manager",
            department_id=opt_id(form.get("department"), self._tr("settings.what.department")),
            email=field(form, "email", "e-mail", 200)), self._tr("settings.done.user_added"))
        self.user_dialog = False
        return result

    @event
    def toggle_active(self, user_id: int, active: bool):
        user_id = to_id(user_id, self._tr("settings.what.user"))
        if to_bool(active):
            return self._do(lambda s, a: admin.deactivate_user(s, a, user_id),
                            self._tr("settings.done.user_deactivated"))
        return self._do(lambda s, a: admin.activate_user(s, a, user_id), self._tr("settings.done.user_activated"))

    @event
    def open_password(self, user_id: int, name: str):
        self.target_user_id = to_id(user_id, self._tr("settings.what.user"))
        self.target_user_name = to_text(name, self._tr("settings.what.name"), 200)
        self.password_dialog = True

    @event
    def set_password_dialog(self, value: bool):
        self.password_dialog = to_bool(value)

    @event
    def reset_password(self, form: dict):
        password = field(form, "password", self._tr("settings.what.password"), 200)
        res = self._do(lambda s, a: admin.reset_password(s, a, self.target_user_id, password),
                       self._tr("settings.done.password_changed"))
        self.password_dialog = False
        return res

    @event
    def open_reassign(self, user_id: int, name: str):
        self.target_user_id = to_id(user_id, self._tr("settings.what.user"))
        self.target_user_name = to_text(name, self._tr("settings.what.name"), 200)
        self.reassign_dialog = True

    @event
    def set_reassign_dialog(self, value: bool):
        self.reassign_dialog = to_bool(value)

    @event
    def reassign(self, form: dict):
        form = to_form(form)
        to = opt_id(form.get("to"), self._tr("settings.what.user"))
        if to is None:
            return rx.toast.error(self._tr("settings.ask.recipient"))
        counts = self._call(admin.reassign_items, self.target_user_id, to, only_open=to_bool(form.get("only_open")))
        self.reassign_dialog = False
        cat = i18n.catalog(self.lang)
        names = {e: cat.get(f"nav.{_plural(e)}", e) for e in ITEM_ENTITIES}
        names["activities"] = self._tr("settings.users.activities")
        text = ", ".join(f"{names.get(k, k)}: {v}" for k, v in counts.items())
        return rx.toast.success(self._tr("settings.done.reassigned", counts=text))

    # departments
    @event
    def create_department(self, form: dict):
        name = field(form, "name", self._tr("settings.what.title"), 200)
        return self._do(lambda s, a: admin.create_department(s, a, name), self._tr("settings.done.dept_added"))

    # matrix
    @event
    def set_level(self, role: str, entity: str, action: str, level: str):
        role = to_text(role, self._tr("settings.what.role"), 50)
        entity = to_text(entity, self._tr("settings.what.item"), 50)
        action = to_text(action, self._tr("settings.what.action"), 50)
        level = to_text(level, self._tr("settings.what.level"), 50)
        return self._do(lambda s, a: admin.set_permission(s, a, role, entity, action, level),
                        self._tr("settings.done.perm_saved"))

    @event
    def reset_matrix(self):
        return self._do(lambda s, a: admin.reset_permissions_to_defaults(s, a), self._tr("settings.done.perm_reset"))

    # integrations
    @event
    def create_token(self, form: dict):
        form = to_form(form)
        what = self._tr("settings.what.integration")
        integration = choice(field(form, "integration", what, 50) or "marketplace", intake.INTEGRATIONS, what)
        self.new_token = self._call(intake.create_token, integration,
                                    field(form, "name", self._tr("settings.what.title"), 200))
        self._load()

    @event
    def create_hook(self, form: dict):
        """A new webhook; its full address is shown once (the database keeps the code's hash)."""
        form = to_form(form)
        user_id = to_id(form.get("user_id"), self._tr("settings.hooks.user"))
        scopes = [sc for sc in ("crm", "user") if form.get(f"scope_{sc}") in (True, "on", "true", "1")]
        name = field(form, "name", self._tr("settings.what.title"), webhooks.NAME_MAX)
        def made(s, a):
            hook, code = webhooks.create(s, a, user_id=user_id, name=name, scopes=scopes)
            return hook.user_id, code
        owner, code = self._call(made)
        origin = (self.router.headers.origin or "").rstrip("/") or f"http://{self.router.headers.host}"
        self.new_hook_url = f"{origin}/rest/{owner}/{code}/"
        self._load()

    @event
    def create_binding(self, form: dict):
        form = to_form(form)
        event = choice(field(form, "event", self._tr("settings.out.event"), 50) or "", OUTBOUND_EVENTS,
                       self._tr("settings.out.event"))
        handler = field(form, "handler", self._tr("settings.out.handler"), 2000)
        return self._do(lambda s, a: outbound.bind(s, a, event, handler, name=field(form, "name", "", 120)),
                        self._tr("settings.done.event_bound"))

    @event
    def unbind_event(self, binding_id: int):
        binding_id = to_id(binding_id, self._tr("settings.out.event"))
        return self._do(lambda s, a: outbound.unbind(s, a, binding_id=binding_id),
                        self._tr("settings.done.event_unbound"))

    @event
    def retry_delivery(self, outbox_id: int):
        outbox_id = to_id(outbox_id, self._tr("settings.out.event"))
        return self._do(lambda s, a: outbound.retry(s, a, outbox_id), self._tr("settings.done.event_retried"))

    @event
    def revoke_hook(self, hook_id: int):
        hook_id = to_id(hook_id, self._tr("settings.what.webhook"))
        return self._do(lambda s, a: webhooks.revoke(s, a, hook_id), self._tr("settings.done.webhook_revoked"))

    @event
    def revoke_token(self, token_id: int):
        token_id = to_id(token_id, self._tr("settings.what.token"))
        return self._do(lambda s, a: intake.revoke_token(s, a, token_id), self._tr("settings.done.token_revoked"))

    @event
    def replay(self, event_id: int):
        event_id = to_id(event_id, self._tr("settings.what.event"))
        return self._do(lambda s, a: intake.replay(s, a, event_id), self._tr("settings.done.event_replayed"))

    # rules
    @event
    def set_rule_active(self, rule_id: int, active: bool):
        rule_id, active = to_id(rule_id, self._tr("settings.what.rule")), to_bool(active)
        return self._do(lambda s, a: rules_admin.set_active(s, a, rule_id, active),
                        self._tr("settings.done.rule_on") if active else self._tr("settings.done.rule_off"))

    @event
    def delete_rule(self, rule_id: int):
        rule_id = to_id(rule_id, self._tr("settings.what.rule"))
        return self._do(lambda s, a: rules_admin.delete_rule(s, a, rule_id), self._tr("settings.done.rule_deleted"))

    # ---- the editor's pickers: stages and fields from lists, never raw codes ----------------
    # (each var reads the state vars it depends on itself, so Reflex sees its dependencies)
    @rx.var
    def req_field_options(self) -> list[Option]:
        """Fields of the chosen stage's pipeline not chosen yet."""
        return [o for o in self.rule_fields.get(_pipe(self.req_stage), []) if o.value not in self.req_fields]

    @rx.var
    def req_field_chips(self) -> list[Option]:
        labels = {o.value: o.label for o in self.rule_fields.get(_pipe(self.req_stage), [])}
        return [Option(k, labels.get(k, k)) for k in self.req_fields]

    @rx.var
    def req_fields_csv(self) -> str:
        return ",".join(self.req_fields)

    @rx.var
    def trig_from_options(self) -> list[Option]:
        """Every stage, and per pipeline "any stage" ("pipeline:")."""
        out, seen = [], set()
        for o in self.stage_options:
            pipe = _pipe(o.value)
            if pipe not in seen:
                seen.add(pipe)
                out.append(Option(f"{pipe}:", i18n.text(self.lang, "settings.rules.any_stage",
                                                        pipeline=o.label.split(" · ")[0])))
            out.append(o)
        return out

    @rx.var
    def trig_to_options(self) -> list[Option]:
        """Stages of the same pipeline as the from-stage (a trigger moves within a pipeline)."""
        pipe = _pipe(self.trig_stage)
        return [o for o in self.stage_options if pipe and _pipe(o.value) == pipe and o.value != self.trig_stage]

    @rx.var
    def trig_field_options(self) -> list[Option]:
        return self.rule_fields.get(_pipe(self.trig_stage), [])

    @rx.var
    def trig_value_options(self) -> list[str]:
        return self.rule_field_values.get(f"{_pipe(self.trig_stage)}:{self.trig_field}", [])

    @rx.var
    def enter_field_options(self) -> list[Option]:
        return self.rule_fields.get(_pipe(self.enter_stage), [])

    @rx.var
    def enter_value_options(self) -> list[str]:
        return self.rule_field_values.get(f"{_pipe(self.enter_stage)}:{self.enter_field}", [])

    def _stage_value(self, value) -> str:
        what = self._tr("settings.what.stage")
        value = to_text(value, what, 200)
        allowed = {o.value for o in self.stage_options} | {f"{_pipe(o.value)}:" for o in self.stage_options}
        return choice(value, allowed, what)

    def _field_key(self, stage_value: str, value) -> str:
        what = self._tr("settings.what.field")
        keys = [o.value for o in self.rule_fields.get(_pipe(stage_value), [])]
        return choice(to_text(value, what, 200), keys, what)

    @event
    def set_req_stage(self, value: str):
        """Another stage: its pipeline's fields are offered (those of another pipeline dropped)."""
        stage = self._stage_value(value)
        if _pipe(stage) != _pipe(self.req_stage):
            self.req_fields = []
        self.req_stage = stage

    @event
    def add_req_field(self, key: str):
        key = self._field_key(self.req_stage, key)
        if key not in self.req_fields:
            self.req_fields = [*self.req_fields, key]

    @event
    def remove_req_field(self, key: str):
        key = to_text(key, self._tr("settings.what.field"), 200)
        self.req_fields = [k for k in self.req_fields if k != key]

    @event
    def set_trig_stage(self, value: str):
        stage = self._stage_value(value)
        if _pipe(stage) != _pipe(self.trig_stage):
            self.trig_field = ""
        self.trig_stage = stage

    @event
    def set_trig_field(self, key: str):
        self.trig_field = self._field_key(self.trig_stage, key)

    @event
    def set_enter_stage(self, value: str):
        stage = self._stage_value(value)
        if _pipe(stage) != _pipe(self.enter_stage):
            self.enter_field = ""
        self.enter_stage = stage

    @event
    def set_enter_field(self, key: str):
        self.enter_field = self._field_key(self.enter_stage, key)

    @event
    def add_required_rule(self, form: dict):
        form = to_form(form)
        stage_what = self._tr("settings.what.stage")
        pipe, _, stage = (field(form, "stage", stage_what, 200) or self.req_stage).partition(":")
        if not stage:
            return rx.toast.error(self._tr("settings.ask.stage"))
        fields = field(form, "fields", self._tr("settings.what.fields"), 2000) or ",".join(self.req_fields)
        if not fields.strip():
            return rx.toast.error(self._tr("settings.ask.field"))
        result = self._do(lambda s, a: rules_admin.save_required(s, a, None, pipe, stage, fields),
                          self._tr("settings.done.rule_added"))
        self.req_fields = []
        return result

    @event
    def add_trigger_rule(self, form: dict):
        form = to_form(form)
        stage_what = self._tr("settings.what.stage")
        pipe, _, src = field(form, "from_stage", stage_what, 200).partition(":")  # "pipeline:" = any stage
        to_pipe, _, dst = field(form, "to_stage", stage_what, 200).partition(":")
        if not pipe or not dst:
            return rx.toast.error(self._tr("settings.ask.stages"))
        if to_pipe != pipe:
            return rx.toast.error(self._tr("settings.ask.same_pipeline"))
        name = field(form, "name", self._tr("settings.what.title"), 200)
        fld = field(form, "field", self._tr("settings.what.field"), 200).strip()
        equals = field(form, "equals", self._tr("settings.what.value"), 500)
        return self._do(lambda s, a: rules_admin.save_trigger(s, a, None, name, pipe, src, fld, equals, dst),
                        self._tr("settings.done.rule_added"))

    @event
    def set_rule_action(self, value: str):
        codes = [code for code, _, _ in rules_admin.action_choices()]
        self.rule_action = choice(value, codes, self._tr("settings.what.action"))

    @event
    def add_on_enter_rule(self, form: dict):
        """A new on-enter rule with one action: the chosen plug-in's form keys are read from
        the submitted form (empty ones left out) and the plug-in validates them."""
        form = to_form(form)
        pipe, _, stage = field(form, "stage", self._tr("settings.what.stage"), 200).partition(":")
        if not stage:
            return rx.toast.error(self._tr("settings.ask.stage"))
        kind, en = self.rule_action, self.lang == "en"
        values = {f["key"]: field(form, f["key"], f["label_en"] if en else f["label"], 2000).strip()
                  for f in rules_admin.action_form(kind)}
        action = {"type": kind, **{k: v for k, v in values.items() if v}}
        name = field(form, "name", self._tr("settings.what.title"), 200)
        return self._do(lambda s, a: rules_admin.save_on_enter(s, a, None, name, pipe, stage, [action]),
                        self._tr("settings.done.rule_added"))

    # recycle bin
    @event
    def restore(self, entity: str, item_id: int):
        entity = choice(entity, ITEM_ENTITIES, self._tr("settings.what.item"))
        item_id = to_id(item_id, self._tr("settings.what.number"))
        return self._do(lambda s, a: recycle.restore(s, a, entity, item_id), self._tr("settings.done.restored"))


def _pipe(stage_value: str) -> str:
    """The pipeline code of a "pipeline:STAGE" option value."""
    return (stage_value or "").partition(":")[0]


def _plural(entity: str) -> str:
    """The plural of an item entity as the navigation keys spell it (nav.leads, nav.companies)."""
    return "companies" if entity == "company" else f"{entity}s"


def _stage_options(s) -> list[Option]:
    pipes = {p.id: p for p in s.exec(select(Pipeline).order_by(Pipeline.sort, Pipeline.id)).all()}
    stages = sorted((st for st in s.exec(select(Stage)).all() if st.pipeline_id in pipes),
                    key=lambda st: (pipes[st.pipeline_id].sort, st.pipeline_id, st.sort, st.id))
    return [Option(f"{pipes[st.pipeline_id].code}:{st.code}", f"{pipes[st.pipeline_id].name} · {st.name}")
            for st in stages]
