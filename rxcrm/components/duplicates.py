"""The duplicates view (a tab of /settings): groups of contacts or companies sharing a phone or
an e-mail, a «Объединить» button per group, and the merge dialog (the item kept, a radio per
field whose values differ). State: rxcrm/state/duplicates.py; labels: rxcrm/i18n/duplicates.py."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.responsive import NOWRAP_TABLE
from rxcrm.state.duplicates import PAGE, DupGroup, DupItem, DuplicatesState, MergeFieldRow
from rxcrm.state.work import Option

S = DuplicatesState
t = S.t


def _th(*labels) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(lab, font_size="12px", color="#4a5563")
                                          for lab in labels]))


def _item_row(i: DupItem) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(i.title, href=i.href, weight="medium", size="2")),
        rx.table.cell(i.company), rx.table.cell(i.responsible), rx.table.cell(i.created),
        rx.table.cell(i.deals), rx.table.cell(i.leads),
        data_testid="dup-item",
    )


def _group(g: DupGroup) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.badge(rx.cond(g.kind == "phone", t["dups.kind.phone"], t["dups.kind.email"]), variant="soft"),
                rx.text(g.value, weight="bold", size="2", data_testid="dup-value"),
                rx.text(t["dups.items"], " ", g.count, size="1", color=theme.TEXT_MUTED),
                rx.spacer(),
                rx.button(rx.icon("merge", size=14), t["dups.merge"], size="1",
                          on_click=S.open_merge(g.ids), data_testid="dup-merge"),
                width="100%", align="center", spacing="2", wrap="wrap",
            ),
            rx.box(
                rx.table.root(_th(t["dups.col.name"], t["dups.col.company"], t["dups.col.responsible"],
                                  t["dups.col.created"], t["dups.col.deals"], t["dups.col.leads"]),
                              rx.table.body(rx.foreach(g.rows, _item_row)), variant="ghost", size="1",
                              width="100%", style=NOWRAP_TABLE),
                width="100%", overflow_x="auto",
            ),
            rx.cond(g.count > g.shown,
                    rx.text(t["dups.more"], " ", g.shown, " ", t["dups.of"], " ", g.count,
                            size="1", color=theme.TEXT_MUTED)),
            spacing="2", width="100%",
        ),
        width="100%", data_testid="dup-group",
    )


def _survivor(o: Option) -> rx.Component:
    return rx.el.label(rx.radio_group.item(value=o.value), rx.text(o.label, size="2"),
                       display="flex", align_items="center", gap="8px", cursor="pointer",
                       data_testid="dup-survivor", data_value=o.value)


def _field_option(o: Option) -> rx.Component:
    return rx.el.label(rx.radio_group.item(value=o.value), rx.text(o.label, size="2"),
                       display="flex", align_items="center", gap="6px", cursor="pointer",
                       data_testid="dup-choice", data_value=o.value)


def _field(fd: MergeFieldRow) -> rx.Component:
    return rx.vstack(
        rx.text(rx.cond(S.lang == "en", fd.label_en, fd.label), size="1", weight="bold", color=theme.TEXT_MUTED),
        rx.radio_group.root(
            rx.flex(rx.foreach(fd.options, _field_option), gap="14px", wrap="wrap"),
            value=fd.chosen, on_change=lambda v: S.choose(fd.key, v),
        ),
        spacing="1", width="100%", data_testid="dup-field", data_key=fd.key,
    )


def merge_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(t["dups.dialog.title"]),
            rx.vstack(
                rx.text(t["dups.dialog.survivor"], size="2", weight="bold"),
                rx.radio_group.root(rx.vstack(rx.foreach(S.merge_items, _survivor), spacing="2", align="start"),
                                    value=S.merge_survivor, on_change=S.set_survivor),
                rx.separator(size="4"),
                rx.cond(S.merge_fields.length() > 0,
                        rx.vstack(rx.text(t["dups.dialog.fields"], size="2", weight="bold"),
                                  rx.foreach(S.merge_fields, _field), spacing="3", width="100%"),
                        rx.text(t["dups.dialog.same"], size="2", color=theme.TEXT_MUTED)),
                rx.cond(S.merge_phones != "",
                        rx.text(t["dups.dialog.phones"], ": ", S.merge_phones, size="1")),
                rx.cond(S.merge_emails != "",
                        rx.text(t["dups.dialog.emails"], ": ", S.merge_emails, size="1")),
                rx.callout(t["dups.dialog.note"], icon="info", size="1", color_scheme="gray"),
                rx.hstack(
                    rx.dialog.close(rx.button(t["common.cancel"], type="button", variant="soft", color_scheme="gray")),
                    rx.button(t["dups.dialog.confirm"], on_click=S.confirm_merge, color_scheme="red",
                              data_testid="dup-confirm"),
                    justify="end", width="100%", spacing="2"),
                spacing="3", width="100%",
            ),
            max_width="620px", data_testid="dup-dialog",
        ),
        open=S.merge_open, on_open_change=S.set_merge_open,
    )


def duplicates_tab() -> rx.Component:
    """The tab's content; it reads its first page when shown."""
    return rx.cond(
        S.dup_error != "",
        rx.callout(S.dup_error, icon="shield-alert", color_scheme="amber"),
        rx.vstack(
            rx.hstack(
                rx.segmented_control.root(
                    rx.segmented_control.item(t["dups.entity.contact"], value="contact"),
                    rx.segmented_control.item(t["dups.entity.company"], value="company"),
                    value=S.dup_entity, on_change=S.set_dup_entity, size="1", data_testid="dup-entity"),
                rx.text(t["dups.total"], rx.text.strong(S.dup_total), size="2", data_testid="dup-total"),
                spacing="3", align="center", wrap="wrap",
            ),
            rx.text(t["dups.hint"], size="1", color=theme.TEXT_MUTED),
            rx.foreach(S.dup_groups, _group),
            rx.cond(S.dup_groups.length() == 0, rx.text(t["dups.empty"], size="1", color=theme.TEXT_MUTED)),
            rx.cond(S.dup_total > PAGE,
                    rx.hstack(rx.button(t["dups.prev"], size="1", variant="soft", on_click=S.dup_prev,
                                        disabled=S.dup_page == 0),
                              rx.text(S.dup_page_label, size="1"),
                              rx.button(t["dups.next"], size="1", variant="soft", on_click=S.dup_next,
                                        disabled=S.dup_page + 1 >= S.dup_pages),
                              spacing="2", align="center")),
            merge_dialog(),
            width="100%", spacing="3",
        ),
    )


__all__ = ["duplicates_tab", "merge_dialog"]
