"""«Импорт» on /leads, /deals, /contacts, /companies: the wizard dialog (state/imports.py).

Файл → Сопоставление полей → Проверка → Импорт → Итоги, as Bitrix24's import goes, with the
check before anything is written and undo after."""
from __future__ import annotations

import reflex as rx

from rxcrm.state.imports import ColumnRow, ImportsListState as L, ImportState as S, JobRow, RejectRow
from . import theme

UPLOAD_ID = "import-file"
_STEPS = (("upload", "import.step.file"), ("map", "import.step.map"), ("check", "import.step.check"),
          ("run", "import.step.run"))


def import_button(page) -> rx.Component:
    """The toolbar's «Импорт» (admins and heads; the service refuses anyone else anyway)."""
    return rx.cond(
        (S.user_role == "admin") | (S.user_role == "head"),
        rx.button(rx.hstack(rx.icon("upload", size=15), rx.text(S.t["import.button"], style=theme.phone(display="none")),
                            spacing="1", align="center"),
                  variant="soft", size="2", on_click=S.open_wizard(page), data_testid="import-button",
                  aria_label=S.t["import.button"], style=theme.phone(min_width="36px", padding_x="8px", flex_shrink="0")),
    )


def _stepper() -> rx.Component:
    def one(i: int, step: str, key: str) -> rx.Component:
        current = (S.step == step) | ((step == "run") & (S.step == "done"))
        return rx.hstack(
            rx.box(rx.text(str(i + 1), size="1", weight="bold"), width="22px", height="22px", border_radius="50%",
                   display="flex", align_items="center", justify_content="center",
                   background=rx.cond(current, theme.ACCENT, "#e8edf3"), color=rx.cond(current, "white", "#4a5664")),
            rx.text(S.t[key], size="2", weight=rx.cond(current, "medium", "regular"),
                    color=rx.cond(current, "inherit", theme.TEXT_MUTED), style=theme.phone(display="none")),
            spacing="2", align="center",
        )
    parts = []
    for i, (step, key) in enumerate(_STEPS):
        if i:
            parts.append(rx.box(height="1px", flex="1", min_width="12px", background=theme.BORDER))
        parts.append(one(i, step, key))
    return rx.hstack(*parts, width="100%", align="center", spacing="2", data_testid="import-steps")


# ---- 1. the file ------------------------------------------------------------------------------
def _upload_step() -> rx.Component:
    return rx.vstack(
        rx.upload(
            rx.vstack(
                rx.icon("file-up", size=32, color=theme.TEXT_MUTED),
                rx.text(S.t["import.drop"], size="3", weight="medium"),
                rx.text(S.t["import.formats"], size="2", color=theme.TEXT_MUTED),
                rx.button(S.t["import.choose"], variant="soft", size="2", type="button"),
                align="center", spacing="2", padding="28px 16px",
            ),
            id=UPLOAD_ID,
            accept={"text/csv": [".csv", ".txt"],
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": [".xlsx"],
                    "application/vnd.ms-excel": [".xls"]},
            max_files=1,
            multiple=False,
            on_drop=S.handle_upload(rx.upload_files(upload_id=UPLOAD_ID)),
            border=f"2px dashed {theme.BORDER}", border_radius="10px", width="100%", cursor="pointer",
            data_testid="import-drop",
        ),
        rx.cond(S.busy, rx.hstack(rx.spinner(size="2"), rx.text(S.t["import.reading"], size="2"), align="center")),
        rx.hstack(
            rx.icon("info", size=14, color=theme.TEXT_MUTED),
            rx.text(S.t["import.hint"], size="1", color=theme.TEXT_MUTED),
            rx.spacer(),
            rx.link(S.t["import.template"], size="2", on_click=S.download_template, href="#",
                    data_testid="import-template"),
            width="100%", align="center", spacing="2",
        ),
        spacing="3", width="100%",
    )


# ---- 2. mapping ---------------------------------------------------------------------------------
def _select(value, options, on_change, testid: str, width: str = "100%", placeholder: str = "") -> rx.Component:
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, width=width, data_testid=testid),
        rx.select.content(rx.foreach(options, lambda o: rx.select.item(o.label, value=o.value))),
        value=value, on_change=on_change, size="2",
    )


def _column_row(c: ColumnRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(c.header, weight="medium", size="2")),
        rx.table.cell(rx.text(c.sample, size="1", color=theme.TEXT_MUTED, style={"overflow_wrap": "anywhere"}),
                      style=theme.phone(display="none")),
        rx.table.cell(_select(rx.cond(c.target == "", "-", c.target), S.targets,
                              lambda v: S.set_target(c.index, v), "import-target", width="240px")),
        data_testid="import-column",
    )


def _labeled(label_key: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(S.t[label_key], size="1", color=theme.TEXT_MUTED), control, spacing="1")


def _map_step() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("file-spreadsheet", size=18, color=theme.ACCENT),
            rx.text(S.file_name, weight="medium", size="2", data_testid="import-file-name"),
            rx.text(S.t["import.rows"] + ": " + S.total.to_string(), size="2", color=theme.TEXT_MUTED),
            rx.spacer(),
            rx.cond(S.is_csv, rx.hstack(
                _labeled("import.encoding", _select(S.encoding, S.encoding_options, S.set_encoding,
                                                    "import-encoding", "150px")),
                _labeled("import.delimiter", _select(S.delimiter, S.delimiter_options, S.set_delimiter,
                                                     "import-delimiter", "90px")),
                spacing="3")),
            rx.cond(S.saved.length() > 0,
                    _labeled("import.saved", _select("", S.saved, S.use_saved, "import-saved", "180px",
                                                     placeholder=S.t["import.saved.pick"]))),
            width="100%", align="end", spacing="3", wrap="wrap",
        ),
        rx.box(
            rx.table.root(
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell(S.t["import.col.file"]),
                    rx.table.column_header_cell(S.t["import.col.sample"], style=theme.phone(display="none")),
                    rx.table.column_header_cell(S.t["import.col.field"]),
                )),
                rx.table.body(rx.foreach(S.columns, _column_row)),
                size="1", width="100%",
            ),
            max_height="38vh", overflow_y="auto", width="100%", border=f"1px solid {theme.BORDER}",
            border_radius="8px",
        ),
        rx.text(S.t["import.mapped"] + ": " + S.mapped_count.to_string() + " / " + S.columns.length().to_string(),
                size="1", color=theme.TEXT_MUTED),
        _duplicates(),
        rx.hstack(
            _labeled("import.responsible", _select(S.responsible_id, S.responsibles, S.set_responsible,
                                                   "import-responsible", "220px")),
            rx.cond(S.pipelines.length() > 0,
                    _labeled("import.pipeline", _select(S.pipeline_id, S.pipelines, S.set_pipeline,
                                                        "import-pipeline", "240px",
                                                        placeholder=S.t["import.pipeline.default"]))),
            _labeled("import.save_as", rx.input(value=S.save_as, on_change=S.set_save_as, size="2", width="220px",
                                                placeholder=S.t["import.save_as.placeholder"],
                                                data_testid="import-save-as")),
            spacing="3", wrap="wrap", width="100%",
        ),
        spacing="3", width="100%",
    )


def _duplicates() -> rx.Component:
    return rx.vstack(
        rx.text(S.t["import.dup.title"], weight="medium", size="2"),
        rx.hstack(
            rx.text(S.t["import.dup.by"], size="2"),
            rx.cond(S.entity != "deal", rx.hstack(  # a deal has no phones of its own: by its title only
                rx.checkbox(S.t["import.dup.phone"], checked=S.match_phone,
                            on_change=lambda v: S.set_match("phone", v)),
                rx.checkbox(S.t["import.dup.email"], checked=S.match_email,
                            on_change=lambda v: S.set_match("email", v)),
                spacing="3")),
            rx.checkbox(S.t["import.dup.name"], checked=S.match_name, on_change=lambda v: S.set_match("name", v)),
            spacing="3", align="center", wrap="wrap",
        ),
        rx.radio_group.root(
            rx.hstack(
                rx.radio_group.item(value="skip"), rx.text(S.t["import.dup.skip"], size="2"),
                rx.radio_group.item(value="update"), rx.text(S.t["import.dup.update"], size="2"),
                rx.radio_group.item(value="create"), rx.text(S.t["import.dup.create"], size="2"),
                spacing="2", align="center", wrap="wrap",
            ),
            value=S.duplicates, on_change=S.set_duplicates, data_testid="import-duplicates",
        ),
        rx.cond(S.duplicates == "update", rx.radio_group.root(
            rx.hstack(
                rx.radio_group.item(value="empty"), rx.text(S.t["import.update.empty"], size="2"),
                rx.radio_group.item(value="overwrite"), rx.text(S.t["import.update.overwrite"], size="2"),
                spacing="2", align="center", wrap="wrap",
            ),
            value=S.update_mode, on_change=S.set_update_mode,
        )),
        spacing="2", width="100%", padding="10px 12px", background="#f7f9fb", border_radius="8px",
    )


# ---- 3–5. progress, counts, rejected rows ------------------------------------------------------
def _count(label_key: str, value, color: str, testid: str) -> rx.Component:
    return rx.vstack(
        rx.text(value.to_string(), size="6", weight="bold", color=color, data_testid=testid),
        rx.text(S.t[label_key], size="1", color=theme.TEXT_MUTED),
        spacing="0", align="center", padding="8px 12px", border=f"1px solid {theme.BORDER}", border_radius="8px",
        min_width="110px", flex="1",
    )


def _counts(future: bool) -> rx.Component:
    k = "import.will." if future else "import.did."
    return rx.hstack(
        _count(k + "created", S.created, "#1f8a4c", "import-created"),
        _count(k + "updated", S.updated, theme.ACCENT, "import-updated"),
        _count(k + "skipped", S.skipped, "#8a6d1f", "import-skipped"),
        _count(k + "rejected", S.rejected, theme.DANGER, "import-rejected"),
        spacing="2", width="100%", wrap="wrap",
    )


def _progress() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.cond(S.active, rx.spinner(size="2")),
            rx.text(S.status_label, weight="medium", size="2", data_testid="import-status"),
            rx.spacer(),
            rx.text(S.done.to_string() + " " + S.t["import.of"] + " " + S.total.to_string() + " · "
                    + S.rate.to_string() + " " + S.t["import.per_s"], size="2", color=theme.TEXT_MUTED,
                    data_testid="import-progress-text"),
            width="100%", align="center",
        ),
        rx.progress(value=S.percent, max=100, width="100%", data_testid="import-progress"),
        spacing="2", width="100%",
    )


def _reject_row(r: RejectRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r.row.to_string()),
        rx.table.cell(r.column),
        rx.table.cell(rx.text(r.value, style={"overflow_wrap": "anywhere"})),
        rx.table.cell(rx.text(r.message, color=rx.cond(r.skipped, theme.TEXT_MUTED, theme.DANGER))),
        data_testid="import-reject",
    )


def _rejects() -> rx.Component:
    return rx.cond(
        S.rejects.length() > 0,
        rx.box(
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(S.t[k]) for k in (
                    "import.rej.row", "import.rej.column", "import.rej.value", "import.rej.reason")])),
                rx.table.body(rx.foreach(S.rejects, _reject_row)),
                size="1", width="100%",
            ),
            max_height="30vh", overflow_y="auto", width="100%", border=f"1px solid {theme.BORDER}",
            border_radius="8px",
        ),
    )


def _check_step() -> rx.Component:
    return rx.vstack(
        _progress(),
        rx.cond(~S.active, rx.vstack(
            rx.callout(S.t["import.check.done"], icon="circle-check", color_scheme="green", size="1"),
            _counts(True), _rejects(), spacing="3", width="100%")),
        spacing="3", width="100%",
    )


def _run_step() -> rx.Component:
    return rx.vstack(
        _progress(),
        rx.text(S.t["import.run.hint"], size="1", color=theme.TEXT_MUTED),
        _counts(False),
        spacing="3", width="100%",
    )


def _done_step() -> rx.Component:
    return rx.vstack(
        rx.callout(S.status_label, icon=rx.cond(S.status == "failed", "triangle-alert", "circle-check"),
                   color_scheme=rx.cond(S.status == "failed", "red", rx.cond(S.status == "undone", "gray", "green")),
                   size="1", data_testid="import-final"),
        rx.cond(S.message != "", rx.text(S.message, size="2")),
        _counts(False), _rejects(),
        spacing="3", width="100%",
    )


# ---- the dialog ----------------------------------------------------------------------------------
def _footer() -> rx.Component:
    cancel_btn = rx.dialog.close(rx.button(S.t["import.close"], variant="soft", color_scheme="gray", type="button"))
    return rx.hstack(
        rx.match(
            S.step,
            ("map", rx.hstack(
                cancel_btn,
                rx.button(S.t["import.run_now"], variant="soft", on_click=S.run, data_testid="import-run-now"),
                rx.button(rx.icon("list-checks", size=15), S.t["import.check"], on_click=S.check,
                          data_testid="import-check"),
                spacing="2")),
            ("check", rx.hstack(
                rx.cond(S.active, rx.button(S.t["import.stop"], variant="soft", color_scheme="red", on_click=S.cancel,
                                            data_testid="import-cancel")),
                rx.cond(~S.active, rx.hstack(
                    rx.button(S.t["import.back"], variant="soft", color_scheme="gray", on_click=S.back_to_mapping),
                    rx.cond(S.rejected > 0, rx.button(rx.icon("download", size=15), S.t["import.errors_xlsx"],
                                                      variant="soft", on_click=S.download_report,
                                                      data_testid="import-report")),
                    rx.button(rx.icon("upload", size=15), S.t["import.run"], on_click=S.run,
                              data_testid="import-run"),
                    spacing="2")),
                spacing="2")),
            ("run", rx.hstack(
                cancel_btn,
                rx.cond(S.active, rx.button(S.t["import.stop"], variant="soft", color_scheme="red", on_click=S.cancel,
                                            data_testid="import-cancel")),
                spacing="2")),
            ("done", rx.hstack(
                rx.cond(S.rejected > 0, rx.button(rx.icon("download", size=15), S.t["import.errors_xlsx"],
                                                  variant="soft", on_click=S.download_report,
                                                  data_testid="import-report")),
                rx.cond((S.status != "undone") & (S.status != "undoing") & ((S.created > 0) | (S.updated > 0)),
                        rx.alert_dialog.root(
                            rx.alert_dialog.trigger(rx.button(rx.icon("undo-2", size=15), S.t["import.undo"],
                                                              variant="soft", color_scheme="red",
                                                              data_testid="import-undo")),
                            rx.alert_dialog.content(
                                rx.alert_dialog.title(S.t["import.undo.title"]),
                                rx.alert_dialog.description(S.t["import.undo.text"]),
                                rx.hstack(
                                    rx.alert_dialog.cancel(rx.button(S.t["common.cancel"], variant="soft",
                                                                     color_scheme="gray")),
                                    rx.alert_dialog.action(rx.button(S.t["import.undo"], color_scheme="red",
                                                                     on_click=S.undo,
                                                                     data_testid="import-undo-confirm")),
                                    justify="end", spacing="3", padding_top="12px"),
                            ),
                        )),
                rx.dialog.close(rx.button(S.t["import.finish"], data_testid="import-finish")),
                spacing="2")),
            cancel_btn,
        ),
        justify="end", width="100%", padding_top="4px",
    )


def import_wizard() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.vstack(
                rx.hstack(
                    rx.dialog.title(S.title, margin="0"),
                    rx.spacer(),
                    rx.dialog.close(rx.icon_button(rx.icon("x", size=16), variant="ghost", color_scheme="gray",
                                                   aria_label=S.t["import.close"])),
                    width="100%", align="center",
                ),
                _stepper(),
                rx.cond(S.error != "", rx.callout(S.error, icon="triangle-alert", color_scheme="red", size="1",
                                                  data_testid="import-error")),
                rx.match(S.step, ("upload", _upload_step()), ("map", _map_step()), ("check", _check_step()),
                         ("run", _run_step()), ("done", _done_step()), _upload_step()),
                _footer(),
                spacing="4", width="100%",
            ),
            max_width="860px", width="96vw", data_testid="import-wizard",
        ),
        open=S.open,
        on_open_change=S.set_open,
    )


# ---- /settings → Импорт ------------------------------------------------------------------------
def _job_row(j: JobRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(j.id.to_string(), color=theme.TEXT_MUTED),
        rx.table.cell(j.when, white_space="nowrap"),
        rx.table.cell(j.who),
        rx.table.cell(rx.vstack(rx.text(j.what, size="2", weight="medium"),
                                rx.text(j.file, size="1", color=theme.TEXT_MUTED),
                                rx.cond(j.mapping != "", rx.text(L.t["import.saved"] + ": " + j.mapping, size="1",
                                                                 color=theme.TEXT_MUTED)),
                                spacing="0")),
        rx.table.cell(rx.cond(j.active,
                              rx.vstack(rx.text(j.status_label, size="2"),
                                        rx.progress(value=j.percent, max=100, width="120px"), spacing="1"),
                              rx.badge(j.status_label, color_scheme=rx.match(
                                  j.status, ("done", "green"), ("failed", "red"), ("undone", "gray"),
                                  ("cancelled", "amber"), "blue"), variant="soft"))),
        rx.table.cell(j.counts, white_space="nowrap"),
        rx.table.cell(rx.hstack(
            rx.cond(j.active, rx.button(L.t["import.stop"], size="1", variant="soft", color_scheme="red",
                                        on_click=L.stop(j.id))),
            rx.cond(j.has_errors, rx.button(rx.icon("download", size=13), L.t["import.errors_xlsx"], size="1",
                                            variant="soft", on_click=L.report(j.id), data_testid="job-report")),
            rx.cond(j.can_undo, rx.alert_dialog.root(
                rx.alert_dialog.trigger(rx.button(rx.icon("undo-2", size=13), L.t["import.undo"], size="1",
                                                  variant="soft", color_scheme="red", data_testid="job-undo")),
                rx.alert_dialog.content(
                    rx.alert_dialog.title(L.t["import.undo.title"]),
                    rx.alert_dialog.description(L.t["import.undo.text"]),
                    rx.hstack(
                        rx.alert_dialog.cancel(rx.button(L.t["common.cancel"], variant="soft", color_scheme="gray")),
                        rx.alert_dialog.action(rx.button(L.t["import.undo"], color_scheme="red",
                                                         on_click=L.undo(j.id), data_testid="job-undo-confirm")),
                        justify="end", spacing="3", padding_top="12px"),
                ))),
            spacing="2")),
        data_testid="import-job",
    )


def imports_tab() -> rx.Component:
    cols = ("№", L.t["settings.imports.col.when"], L.t["settings.imports.col.who"],
            L.t["settings.imports.col.what"], L.t["settings.imports.col.status"],
            L.t["settings.imports.col.counts"], "")
    return rx.vstack(
        rx.text(L.t["settings.imports.hint"], size="2", color=theme.TEXT_MUTED),
        rx.cond(
            L.jobs.length() > 0,
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(c) for c in cols])),
                rx.table.body(rx.foreach(L.jobs, _job_row)),
                size="2", width="100%", variant="surface",
            ),
            rx.callout(L.t["settings.imports.empty"], icon="info", size="1"),
        ),
        rx.cond(L.total > L.jobs.length(), rx.hstack(
            rx.button("‹", size="1", variant="soft", on_click=L.turn("prev"), disabled=L.offset == 0),
            rx.text((L.offset + 1).to_string() + "–" + (L.offset + L.jobs.length()).to_string() + " / "
                    + L.total.to_string(), size="2"),
            rx.button("›", size="1", variant="soft", on_click=L.turn("next"),
                      disabled=L.offset + L.jobs.length() >= L.total),
            spacing="2", align="center")),
        spacing="3", width="100%", data_testid="imports-tab",
    )


__all__ = ["import_button", "import_wizard", "imports_tab"]
