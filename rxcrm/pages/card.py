"""Card pages: stage bar, field blocks, links (Связи), planned activities and the timeline.

On a phone (below 768 px) the page is one column — the heading, the stage bar (scrolling
sideways, each stage readable) with a «Сменить стадию» menu, the field blocks, Связи, then
the composer and the timeline — and the forms wrap to the width of the screen."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.filterbar import missing_fields_dialog, missing_input
from rxcrm.components.forms import date_input, field_control, form_dialog, option_select, search_select, time_input
from rxcrm.components.shell import layout
from rxcrm.models.activity import CALL, EMAIL_ACT, MEETING, TASK
from rxcrm.state.card import Block, CardState, EditField, Event, Found, LinkRow, Planned, StageChip

T = CardState.t

# the kinds of activity the composer plans (as models.activity names them) and their labels
ACTIVITY_KINDS = [(CALL, T["acts.kind.call"]), (MEETING, T["acts.kind.meeting"]), (TASK, T["acts.kind.task"]),
                  (EMAIL_ACT, T["acts.kind.email"])]

# the timeline's filter: timeline_event kinds
KIND_OPTIONS = [("all", T["card.filter.all"]), ("stage_changed", T["card.filter.stage_changed"]),
                ("field_changed", T["card.filter.field_changed"]), ("comment", T["card.filter.comment"]),
                ("activity_done", T["card.filter.activity_done"]),
                ("activity_planned", T["card.filter.activity_planned"]), ("email", T["card.filter.email"]),
                ("converted", T["card.filter.converted"]), ("closed", T["card.filter.closed"]),
                ("created", T["card.filter.created"])]


# When the stage bar scrolls sideways (narrow screens), the current stage is brought into
# view — sideways only, the page itself never jumps.
_SHOW_CURRENT_STAGE = """(() => {
  const chip = document.querySelector('[data-testid="stage-chip"][data-current="true"]');
  const bar = chip && chip.parentElement;
  if (!bar || bar.scrollWidth <= bar.clientWidth) return;
  const c = chip.getBoundingClientRect(), b = bar.getBoundingClientRect();
  bar.scrollLeft += (c.left - b.left) - (b.width - c.width) / 2;
})()"""


def _stage(st: StageChip) -> rx.Component:
    filled = st.current | st.passed
    return rx.box(
        rx.text(st.name, size="1", weight=rx.cond(st.current, "bold", "regular"),
                color=rx.cond(filled, "white", "#4a5563"), white_space="nowrap", overflow="hidden",
                text_overflow="ellipsis"),
        rx.cond(st.current, rx.box(display="none", on_mount=rx.call_script(_SHOW_CURRENT_STAGE))),
        background=rx.cond(filled, st.color, "#e9edf1"),
        padding="6px 10px", flex="1", min_width="0", text_align="center",
        # below 1280 px the chips keep their names (the bar scrolls sideways); a phone's are taller
        style={theme.COMPACT: {"flex": "0 0 auto"}, theme.PHONE: {"padding": "8px 12px"}},
        border_radius="4px", data_testid="stage-chip", data_current=st.current.to_string(),
        data_stage=st.name, title=st.name,
        cursor=rx.cond(CardState.card_editable & ~CardState.is_closed, "pointer", "default"),
        on_click=CardState.click_stage(st.id),
        _hover={"opacity": "0.85"},
    )


def _stage_menu() -> rx.Component:
    """On a phone: «Сменить стадию» — every stage of the pipeline in a list (the current one
    ticked); a choice is a click on its chip (CardState.click_stage: required fields ask in
    the dialog, a final stage opens the finish dialog)."""
    item = lambda st: rx.menu.item(  # noqa: E731
        rx.hstack(rx.box(width="10px", height="10px", border_radius="3px", background=st.color, flex_shrink="0"),
                  rx.text(st.name, weight=rx.cond(st.current, "bold", "regular")),
                  rx.spacer(),
                  rx.cond(st.current, rx.icon("check", size=14)),
                  align="center", spacing="2", width="100%"),
        on_select=CardState.click_stage(st.id), disabled=st.current,
        data_testid="stage-menu-item", data_stage=st.name,
    )
    return rx.cond(
        CardState.card_editable & ~CardState.is_closed & (CardState.stages.length() > 0),
        rx.box(
            rx.menu.root(
                rx.menu.trigger(rx.button(rx.icon("arrow-right-left", size=14), CardState.t["board.change_stage"],
                                          size="2", variant="soft", data_testid="stage-menu")),
                rx.menu.content(rx.foreach(CardState.stages, item), align="end", min_width="220px"),
            ),
            **theme.desktop_hidden(display="block"),
        ),
    )


def _edit_input(f: EditField) -> rx.Component:
    """One field of a block in edit: the same control per kind as the required-fields dialog
    (a program or a user from a searchable list, ДД.ММ.ГГГГ with a calendar, a yes/no switch)."""
    return rx.vstack(
        rx.text(f.label, size="1", color=theme.TEXT_MUTED),
        field_control(f, "edit-" + f.key),
        rx.cond(f.error != "", rx.text(f.error, size="1", color=theme.DANGER)),
        spacing="1", width="100%", align="start",
    )


def _edit_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.foreach(CardState.edit_fields, _edit_input),
            rx.cond(CardState.edit_error != "",
                    rx.callout(CardState.edit_error, icon="triangle-alert", color_scheme="red", size="1",
                               data_testid="edit-error")),
            rx.hstack(
                rx.button(T["common.cancel"], type="button", variant="soft", color_scheme="gray", size="2",
                          on_click=CardState.cancel_edit),
                rx.button(T["card.save"], type="submit", size="2", data_testid="edit-save"),
                justify="end", width="100%", spacing="2",
            ),
            spacing="3", width="100%",
        ),
        on_submit=CardState.save_edit,
        reset_on_submit=False,
        width="100%",
    )


def _block(b: Block) -> rx.Component:
    editing = CardState.edit_block == b.title
    return rx.box(
        rx.hstack(
            rx.text(b.label, weight="bold", size="2", color="#1f2933"),
            rx.spacer(),
            rx.cond(
                CardState.card_editable & CardState.edit_blocks.contains(b.title) & ~editing,
                rx.link(rx.hstack(rx.icon("pencil", size=12), rx.text(T["card.edit"]), spacing="1", align="center"),
                        size="1", cursor="pointer", on_click=CardState.start_edit(b.title),
                        data_testid="block-edit"),
            ),
            width="100%", padding_bottom="8px", align="center",
        ),
        rx.cond(
            editing,
            _edit_form(),
            rx.foreach(
                b.fields,
                lambda f: rx.hstack(
                    rx.text(f.label, size="1", color=theme.TEXT_MUTED, width="40%", min_width="120px"),
                    rx.text(f.value, size="2", color="#1f2933", width="60%", word_break="break-word"),
                    align="start", width="100%", padding_y="4px", border_bottom=f"1px dashed {theme.BORDER}",
                ),
            ),
        ),
        background="white", border=f"1px solid {theme.BORDER}", border_radius="10px", padding="14px 16px",
        width="100%", data_testid="field-block", data_title=b.title,
    )


def _link(link: LinkRow) -> rx.Component:
    return rx.hstack(
        rx.badge(link.kind, variant="soft", color_scheme="gray", size="1"),
        rx.link(link.title, href=link.href, size="2", color="#1f5fa8"),
        spacing="2", align="center",
    )


def _planned(p: Planned) -> rx.Component:
    return rx.hstack(
        rx.icon("calendar-clock", size=15, color=rx.cond(p.overdue, theme.DANGER, theme.ACCENT)),
        rx.text(p.subject, size="2", weight="medium", style=theme.phone(flex="1 1 0", min_width="0")),
        rx.spacer(style=theme.phone(display="none")),
        rx.text(p.at, size="1", color=rx.cond(p.overdue, theme.DANGER, theme.TEXT_MUTED)),
        rx.button(T["acts.complete"], size="1", variant="soft", color_scheme="green",
                  on_click=CardState.open_done(p.id), data_testid="activity-done"),
        rx.button(T["card.planned.reschedule"], size="1", variant="ghost", on_click=CardState.open_resched(p.id)),
        width="100%", align="center", padding="8px 12px", background="#fff8e6", border="1px solid #f5dfa8",
        border_radius="8px", data_testid="planned-activity", style=theme.phone(flex_wrap="wrap", row_gap="6px"),
    )


def _done_dialog() -> rx.Component:
    return form_dialog(
        T["card.done.title"],
        rx.text_area(name="result", placeholder=T["card.done.placeholder"], width="100%", rows="3",
                     data_testid="done-result"),
        on_submit=CardState.complete, open_var=CardState.done_open, on_open_change=CardState.set_done_open,
        submit=T["card.done.submit"], submit_testid="done-submit", reset=True, max_width="420px",
    )


def _resched_dialog() -> rx.Component:
    return form_dialog(
        T["card.resched.title"],
        rx.hstack(date_input("date", CardState.resched_date, testid="resched-date", flex="1",
                             placeholder=T["card.date.placeholder"]),
                  time_input("time", CardState.resched_time, testid="resched-time", width="130px",
                             placeholder=T["card.time.placeholder"]),
                  width="100%", spacing="2"),
        on_submit=CardState.reschedule, open_var=CardState.resched_open, on_open_change=CardState.set_resched_open,
        submit=T["card.planned.reschedule"], reset=True, max_width="420px",
    )


_WRAP_PHONE = theme.phone(flex_wrap="wrap", row_gap="8px")


def _composer() -> rx.Component:
    error = rx.cond(CardState.composer_error != "",
                    rx.callout(CardState.composer_error, icon="triangle-alert", color_scheme="red", size="1",
                               data_testid="composer-error"))
    comment = rx.form(
        rx.vstack(
            rx.text_area(name="text", placeholder=T["card.comment.placeholder"], width="100%", rows="3",
                         data_testid="comment-text"),
            error,
            rx.button(T["card.send"], type="submit", size="2", data_testid="comment-send"),
            spacing="2", align="end", width="100%",
        ),
        on_submit=CardState.add_comment, reset_on_submit=True, width="100%",
    )
    activity = rx.form(
        rx.vstack(
            rx.hstack(
                rx.select.root(
                    rx.select.trigger(width="140px"),
                    rx.select.content(*[rx.select.item(label, value=v) for v, label in ACTIVITY_KINDS]),
                    name="kind", default_value="call", size="2",
                ),
                rx.input(name="subject", placeholder=T["card.activity.subject"], flex="1",
                         min_width="180px", data_testid="activity-subject"),
                width="100%", spacing="2", style=_WRAP_PHONE,
            ),
            rx.hstack(
                rx.box(date_input("date", CardState.activity_date, testid="activity-date", width="100%",
                                  placeholder=T["card.date.placeholder"]), flex="1", min_width="150px"),
                time_input("time", CardState.activity_time, testid="activity-time", width="120px",
                           placeholder=T["card.time.placeholder"]),
                rx.input(rx.input.slot(rx.text(T["card.activity.minutes"], size="1", color=theme.TEXT_MUTED), side="right"),
                         name="duration", default_value="15", width="96px", input_mode="numeric",
                         title=T["card.activity.duration"], data_testid="activity-duration"),
                rx.select.root(
                    rx.select.trigger(width="170px", placeholder=T["card.activity.remind"]),
                    rx.select.content(rx.select.item(T["card.remind.none"], value="none"),
                                      rx.select.item(T["card.remind.quarter"], value="15"),
                                      rx.select.item(T["card.remind.half_hour"], value="30"),
                                      rx.select.item(T["card.remind.hour"], value="60"),
                                      rx.select.item(T["card.remind.day"], value="1440")),
                    name="remind", default_value="15", size="2",
                ),
                width="100%", spacing="2", style=_WRAP_PHONE,
            ),
            rx.hstack(
                rx.select.root(
                    rx.select.trigger(placeholder=T["card.activity.responsible"], width="100%"),
                    rx.select.content(rx.foreach(CardState.user_options,
                                                 lambda o: rx.select.item(o.label, value=o.value))),
                    name="responsible", size="2",
                ),
                width="100%",
            ),
            rx.text_area(name="description", placeholder=T["card.activity.description"], width="100%", rows="2"),
            rx.text(T["card.activity.limits"], size="1", color=theme.TEXT_MUTED),
            error,
            rx.button(T["card.activity.save"], type="submit", size="2", data_testid="activity-save"),
            spacing="2", align="end", width="100%",
        ),
        on_submit=CardState.plan_activity, reset_on_submit=False, width="100%",
    )
    email = rx.form(
        rx.vstack(
            rx.input(name="to", placeholder=T["card.email.to"], width="100%"),
            rx.input(name="subject", placeholder=T["card.email.subject"], width="100%"),
            rx.text_area(name="text", placeholder=T["card.email.text"], width="100%", rows="4"),
            error,
            rx.button(T["card.send"], type="submit", size="2"),
            spacing="2", align="end", width="100%",
        ),
        on_submit=CardState.send_email, reset_on_submit=True, width="100%",
    )
    return rx.box(
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger(T["card.tab.comment"], value="comment", data_testid="tab-comment"),
                rx.tabs.trigger(T["card.tab.activity"], value="activity", data_testid="tab-activity"),
                rx.tabs.trigger(T["card.tab.email"], value="email", data_testid="tab-email"),
            ),
            rx.tabs.content(rx.box(comment, padding_top="10px"), value="comment"),
            rx.tabs.content(rx.box(activity, padding_top="10px"), value="activity"),
            rx.tabs.content(rx.box(email, padding_top="10px"), value="email"),
            value=CardState.composer_tab, on_change=CardState.set_composer_tab,
        ),
        background="white", border=f"1px solid {theme.BORDER}", border_radius="10px", padding="10px 16px 14px",
        width="100%", data_testid="composer", style=theme.phone(padding="6px 12px 12px"),
    )


def _event(e: Event) -> rx.Component:
    return rx.hstack(
        rx.box(width="8px", height="8px", border_radius="50%", background=theme.ACCENT, margin_top="7px",
               flex_shrink="0"),
        rx.vstack(
            rx.hstack(
                rx.text(e.label, size="1", weight="bold", color="#1f2933"),
                rx.text(e.at, size="1", color=theme.TEXT_MUTED),
                rx.text(e.who, size="1", color=theme.TEXT_MUTED),
                spacing="2", align="center", flex_wrap="wrap",
            ),
            rx.cond(e.text != "", rx.text(e.text, size="2", color="#2d3a48", white_space="pre-wrap")),
            spacing="1", align="start",
        ),
        spacing="3", align="start", width="100%", padding="8px 4px", border_bottom=f"1px solid {theme.BORDER}",
        data_testid="timeline-event", data_kind=e.kind,
    )


def _found(f: Found) -> rx.Component:
    return rx.hstack(
        rx.text(f.title, size="2", weight="medium"),
        rx.text(f.hint, size="1", color=theme.TEXT_MUTED),
        spacing="2", align="center", width="100%", padding="6px 8px", border_radius="6px", cursor="pointer",
        background=rx.cond(CardState.picked_contact_id == f.id, "#eaf2fc", "transparent"),
        _hover={"background": "#f1f4f7"}, on_click=CardState.pick_contact(f.id), data_testid="found-contact",
    )


def _pipeline_select() -> rx.Component:
    return rx.vstack(
        rx.text(T["card.finish.pipeline"], size="1", color=theme.TEXT_MUTED),
        option_select(CardState.pipeline_options, T["card.finish.pipeline_default"], name="pipeline"),
        spacing="1", width="100%", align="start",
    )


def _radio(value: str, label) -> rx.Component:
    """A radio option whose whole line — the label too — is clickable (a <label> around both)."""
    return rx.el.label(
        rx.radio_group.item(value=value),
        rx.text(label, size="2"),
        display="flex", align_items="center", gap="8px", cursor="pointer", data_testid="finish-option",
        data_value=value,
    )


def _lead_finish() -> rx.Component:
    mode = CardState.finish_mode
    return rx.vstack(
        rx.radio_group.root(
            rx.vstack(
                rx.text(T["card.finish.good"], size="2", weight="bold"),
                _radio("deal_contact", T["card.finish.deal_contact"]),
                _radio("deal", T["card.finish.deal_only"]),
                _radio("existing", T["card.finish.existing"]),
                rx.text(T["card.finish.bad"], size="2", weight="bold", padding_top="6px"),
                _radio("JUNK", T["card.finish.junk"]),
                _radio("DUPLICATE", T["card.finish.duplicate"]),
                spacing="2", align="start",
            ),
            value=mode, on_change=CardState.set_finish_mode, data_testid="finish-mode",
        ),
        rx.cond(
            (mode == "JUNK") | (mode == "DUPLICATE"),
            rx.text_area(name="reason", placeholder=T["card.finish.reason"], width="100%", rows="2",
                         data_testid="finish-reason"),
            rx.vstack(
                _pipeline_select(),
                rx.input(name="deal_title", placeholder=T["card.finish.deal_title"], width="100%"),
                rx.cond(mode == "deal_contact",
                        rx.input(name="company_title", placeholder=T["card.finish.company"], width="100%")),
                rx.cond(mode == "existing", _contact_search()),
                spacing="2", width="100%",
            ),
        ),
        spacing="3", width="100%", align="start",
    )


def _deal_finish() -> rx.Component:
    return rx.vstack(
        rx.radio_group.root(
            rx.hstack(_radio("won", T["card.finish.won"]), _radio("lost", T["card.finish.lost"]), spacing="5",
                      style=_WRAP_PHONE),
            value=CardState.finish_mode, on_change=CardState.set_finish_mode, data_testid="finish-mode",
        ),
        rx.cond(CardState.finish_mode == "lost",
                rx.text_area(name="reason", placeholder=T["card.finish.lost_reason"], width="100%", rows="3",
                             data_testid="finish-reason")),
        spacing="3", width="100%", align="start",
    )


def _finish_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(CardState.card_entity == "lead", T["card.finish.title.lead"],
                                    T["card.finish.title.deal"])),
            rx.form(
                rx.vstack(
                    rx.cond(CardState.card_entity == "lead", _lead_finish(), _deal_finish()),
                    rx.foreach(CardState.finish_missing, missing_input),
                    rx.cond(CardState.finish_error != "",
                            rx.callout(CardState.finish_error, icon="triangle-alert", color_scheme="red", size="1",
                                       data_testid="finish-error")),
                    rx.hstack(
                        rx.dialog.close(rx.button(T["common.cancel"], type="button", variant="soft",
                                                  color_scheme="gray")),
                        rx.button(T["card.finish.submit"], type="submit", data_testid="finish-submit"),
                        justify="end", width="100%", spacing="2",
                    ),
                    spacing="3", width="100%",
                ),
                on_submit=CardState.submit_finish, reset_on_submit=False,
            ),
            max_width="540px",
        ),
        open=CardState.finish_open, on_open_change=CardState.set_finish_open,
    )


def _new_deal_dialog() -> rx.Component:
    return form_dialog(
        T["card.new_deal.title"],
        rx.vstack(
            rx.input(name="title", placeholder=T["card.new_deal.name"], width="100%", data_testid="new-deal-title"),
            _pipeline_select(),
            search_select("program", CardState.program_options, "", T["card.new_deal.program"],
                          testid="new-deal-program"),
            rx.input(name="amount", placeholder=T["card.new_deal.amount"], width="100%"),
            spacing="3", width="100%",
        ),
        on_submit=CardState.create_deal, open_var=CardState.new_deal_open,
        on_open_change=CardState.set_new_deal_open, submit=T["card.new_deal.submit"], submit_testid="new-deal-submit",
        max_width="480px",
    )


def _contact_search() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.input(value=CardState.search_q, on_change=CardState.set_search_q,
                     placeholder=T["card.contact.search"], flex="1", data_testid="contact-search"),
            rx.button(T["card.contact.find"], type="button", variant="soft", on_click=CardState.search_contacts),
            width="100%",
        ),
        rx.vstack(rx.foreach(CardState.found, _found), spacing="0", width="100%", max_height="180px",
                  overflow_y="auto"),
        rx.cond(CardState.picked_contact != "", rx.text(T["card.contact.picked"] + " ", rx.text.strong(CardState.picked_contact),
                                                         size="2")),
        width="100%", spacing="2",
    )


def _link_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(T["card.link.title"]),
            _contact_search(),
            rx.hstack(rx.dialog.close(rx.button(T["common.cancel"], variant="soft", color_scheme="gray")),
                      rx.button(T["card.link.submit"], on_click=CardState.link_picked), justify="end", width="100%",
                      spacing="2", padding_top="12px"),
            max_width="480px",
        ),
        open=CardState.link_open, on_open_change=CardState.set_link_open,
    )


def _actions() -> rx.Component:
    return rx.hstack(
        rx.cond(
            ((CardState.card_entity == "lead") | (CardState.card_entity == "deal")) & CardState.card_editable
            & ~CardState.is_closed,
            rx.button(rx.icon("flag", size=14),
                      rx.cond(CardState.card_entity == "lead", T["card.finish.lead"], T["card.finish.deal"]),
                      size="2", on_click=CardState.open_finish, data_testid="finish-open"),
        ),
        rx.cond(CardState.can_reopen,
                rx.button(rx.icon("rotate-ccw", size=14), T["card.reopen"], size="2", variant="soft",
                          on_click=CardState.reopen, data_testid="reopen")),
        rx.cond((CardState.card_entity == "contact") | (CardState.card_entity == "company"),
                rx.button(rx.icon("plus", size=14), T["card.new_deal"], size="2",
                          on_click=CardState.set_new_deal_open(True), data_testid="new-deal-open")),
        spacing="2",
    )


def _body() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.link(rx.hstack(rx.icon("arrow-left", size=16),
                              rx.text(CardState.t["common.back"], style=theme.phone(display="none")),
                              spacing="1", align="center"),
                    href="/" + CardState.card_section, size="2", color=theme.TEXT_MUTED,
                    aria_label=CardState.t["common.back"],
                    style=theme.phone(align_self="flex-start", padding="4px 8px 8px 0", margin_right="-8px")),
            # on a phone: the heading wraps by words beside the back arrow, the actions go under it
            rx.heading(CardState.card_title, size=rx.breakpoints(initial="4", sm="5"), data_testid="card-heading",
                       style=theme.phone(flex="1 1 calc(100% - 40px)", min_width="0", overflow_wrap="anywhere")),
            rx.cond(CardState.is_closed,
                    rx.badge(rx.cond(CardState.card_semantic == "success", T["card.closed.success"],
                                     T["card.closed.failure"]),
                             color_scheme=rx.cond(CardState.card_semantic == "success", "green", "red"))),
            rx.spacer(style=theme.phone(display="none")),
            _stage_menu(),
            _actions(),
            spacing="4", align="center", width="100%",
            style=theme.phone(flex_wrap="wrap", row_gap="8px", column_gap="8px"),
        ),
        rx.cond(CardState.live_notice != "",
                rx.callout(CardState.live_notice, icon="refresh-cw", color_scheme="amber", size="1",
                           width="100%", data_testid="card-live-notice")),
        rx.cond(CardState.stages.length() > 0,
                rx.hstack(rx.foreach(CardState.stages, _stage), spacing="1", width="100%",
                          data_testid="stage-bar",
                          style={theme.COMPACT: {"overflow_x": "auto", "scrollbar_width": "none",
                                                 "padding_bottom": "2px"}})),
        rx.cond(
            CardState.is_repeat,
            rx.callout(
                rx.hstack(
                    rx.text(rx.cond(CardState.card_entity == "lead", T["card.repeat.lead"], T["card.repeat.deal"]),
                            rx.cond(CardState.repeat_contact != "", T["card.repeat.known"], ""),
                            rx.text.strong(CardState.repeat_contact)),
                    rx.spacer(),
                    rx.cond(CardState.card_editable,
                            rx.link(T["card.repeat.unlink"], size="1", cursor="pointer", on_click=CardState.unlink_repeat)),
                    width="100%", align="center",
                ),
                icon="repeat", color_scheme="orange", size="1", width="100%", data_testid="repeat-banner",
            ),
        ),
        rx.flex(
            rx.vstack(
                rx.foreach(CardState.blocks, _block),
                rx.cond(
                    (CardState.card_links.length() > 0) | (CardState.card_editable & (CardState.card_contact_id == 0)
                                                           & ((CardState.card_entity == "lead")
                                                              | (CardState.card_entity == "deal"))),
                    rx.box(
                        rx.hstack(
                            rx.text(T["card.links"], weight="bold", size="2"),
                            rx.spacer(),
                            rx.cond(CardState.card_editable & (CardState.card_contact_id == 0)
                                    & ((CardState.card_entity == "lead") | (CardState.card_entity == "deal")),
                                    rx.link(T["card.links.add"], size="1", cursor="pointer",
                                            on_click=CardState.set_link_open(True))),
                            width="100%", padding_bottom="8px",
                        ),
                        rx.vstack(rx.foreach(CardState.card_links, _link), spacing="2", align="start"),
                        background="white", border=f"1px solid {theme.BORDER}", border_radius="10px",
                        padding="14px 16px", width="100%", data_testid="links",
                    ),
                ),
                width="40%", min_width="340px", spacing="3",
                style=theme.phone(width="100%", min_width="0"),
            ),
            rx.vstack(
                rx.cond(CardState.card_editable, _composer()),
                rx.vstack(
                    rx.hstack(
                        rx.text(T["card.timeline"], weight="bold", size="3"),
                        rx.spacer(),
                        rx.select.root(
                            rx.select.trigger(),
                            rx.select.content(*[rx.select.item(label, value=v) for v, label in KIND_OPTIONS]),
                            value=rx.cond(CardState.kind_filter == "", "all", CardState.kind_filter),
                            on_change=CardState.set_kind_filter, size="1",
                        ),
                        width="100%", align="center",
                    ),
                    rx.foreach(CardState.planned_items, _planned),
                    rx.box(rx.foreach(CardState.events, _event), width="100%", data_testid="timeline"),
                    rx.cond(CardState.events_more,
                            rx.button(T["card.timeline.more"], variant="ghost", size="1", on_click=CardState.more_events)),
                    rx.cond(CardState.events.length() == 0,
                            rx.text(T["card.timeline.empty"], size="2", color=theme.TEXT_MUTED)),
                    width="100%", spacing="3", background="white", border=f"1px solid {theme.BORDER}",
                    border_radius="10px", padding="14px 16px", align="start",
                ),
                flex="1", min_width="0", spacing="3", width=rx.breakpoints(initial="100%", sm="auto"),
            ),
            # a phone: one column — the blocks and Связи, then the composer and the timeline
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing=rx.breakpoints(initial="3", sm="4"), align="start", width="100%",
        ),
        missing_fields_dialog(CardState),
        _finish_dialog(),
        _new_deal_dialog(),
        _done_dialog(),
        _resched_dialog(),
        _link_dialog(),
        spacing="4", width="100%", align="start",
    )


def _error() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("shield-alert", size=32, color=theme.DANGER),
            rx.heading(CardState.card_error, size="4", data_testid="card-error"),
            rx.link(CardState.t["common.back"], href="/" + CardState.card_section),
            align="center", spacing="3", padding="48px", background="white", border_radius="12px",
            border=f"1px solid {theme.BORDER}",
        ),
        padding_top="48px", width="100%",
    )


def card_page(route: str):
    title_keys = {"/leads": "page.leads.title", "/deals": "page.deals.title", "/contacts": "page.contacts.title",
                  "/companies": "page.companies.title"}

    def page() -> rx.Component:
        return layout(route, CardState.t[title_keys[route]], rx.cond(CardState.card_error != "", _error(), _body()))

    page.__name__ = "card_" + route.strip("/")
    return page
