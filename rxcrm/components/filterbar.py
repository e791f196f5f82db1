"""The one filter + search bar of every list and board: search box, filter panel with
presets (Представления фильтра), removable chips, view switch, pipeline, export.

The filter panel and the «Создать» dialog are rendered from data: WorkState.filter_rows
(the field catalog + the entity's `filter_panel`) and WorkState.create_fields (the entity's
`create_form`), each row drawn by the control its kind asks for."""
from __future__ import annotations

import reflex as rx

from rxcrm.components.forms import option_select
from rxcrm.components.import_wizard import import_button
from rxcrm.state.work import Chip, CreateInput, FilterRow, MissingField, PresetItem, WorkState

from . import theme


def _title(text) -> rx.Component:
    return rx.text(text, size="1", weight="bold", color=theme.TEXT_MUTED)


def _checks(row: FilterRow) -> rx.Component:
    """A box per option, submitted as `<key>__<value>`."""
    return rx.vstack(
        _title(row.label),
        rx.box(
            rx.foreach(
                row.options,
                lambda o: rx.box(
                    rx.checkbox(o.label, name=row.key + "__" + o.value, size="1",
                                default_checked=row.checked.contains(o.value)),
                    padding_y="2px",
                ),
            ),
            max_height="150px", overflow_y="auto", width="100%",
            border=f"1px solid {theme.BORDER}", border_radius="6px", padding="6px 8px",
        ),
        spacing="1", width="100%", align="start", data_testid="filter-field", data_key=row.key,
    )


def _range(row: FilterRow) -> rx.Component:
    """From–to, submitted as `<key>_from` / `<key>_to`."""
    return rx.vstack(
        _title(row.label),
        rx.hstack(
            rx.input(name=row.key + "_from", type=row.input_type, size="1", placeholder=WorkState.t["work.filter.from"],
                     default_value=row.value_from, width="100%"),
            rx.text("—", size="1"),
            rx.input(name=row.key + "_to", type=row.input_type, size="1", placeholder=WorkState.t["work.filter.to"],
                     default_value=row.value_to, width="100%"),
            width="100%", align="center", spacing="1",
        ),
        spacing="1", width="100%", align="start", data_testid="filter-field", data_key=row.key,
    )


def _activity(row: FilterRow) -> rx.Component:
    """The activity state (any / overdue / today / none), submitted as `activity`."""
    return rx.vstack(
        _title(row.label),
        rx.select.root(
            rx.select.trigger(width="100%"),
            rx.select.content(rx.foreach(row.options, lambda o: rx.select.item(o.label, value=o.value))),
            name=row.key,
            default_value=row.value,
            size="1",
        ),
        spacing="1", align="start", width="100%", data_testid="filter-field", data_key=row.key,
    )


def _filter_field(row: FilterRow) -> rx.Component:
    return rx.match(row.control, ("checks", _checks(row)), ("range", _range(row)), ("activity", _activity(row)),
                    rx.fragment())


def _preset_row(p: PresetItem) -> rx.Component:
    return rx.hstack(
        rx.text(p.name, size="2", flex="1", cursor="pointer", on_click=WorkState.apply_preset(p.id),
                weight=rx.cond(WorkState.active_preset_id == p.id, "bold", "regular"),
                color=rx.cond(WorkState.active_preset_id == p.id, "#1f5fa8", "#1f2933"),
                data_testid="preset-item"),
        rx.cond(p.shared, rx.tooltip(rx.icon("users", size=13, color=theme.TEXT_MUTED),
                                     content=WorkState.t["work.presets.shared"])),
        rx.tooltip(
            rx.icon("pin", size=14, cursor="pointer", on_click=WorkState.pin_preset(p.id),
                    color=rx.cond(p.is_default, theme.ACCENT, "#b5bfcb"), data_testid="preset-pin"),
            content=WorkState.t["work.presets.pin"],
        ),
        rx.cond(~p.builtin,
                rx.icon("x", size=14, cursor="pointer", color="#b5bfcb",
                        on_click=WorkState.delete_preset(p.id))),
        align="center", spacing="2", width="100%", padding="5px 8px", border_radius="6px",
        background=rx.cond(WorkState.active_preset_id == p.id, "#eaf2fc", "transparent"),
        _hover={"background": "#f1f4f7"},
    )


def _presets() -> rx.Component:
    return rx.vstack(
        _title(WorkState.t["work.presets.title"]),
        rx.vstack(rx.foreach(WorkState.presets, _preset_row), spacing="0", width="100%"),
        rx.divider(),
        rx.form(
            rx.vstack(
                rx.input(name="name", placeholder=WorkState.t["work.presets.name"], size="1", width="100%",
                         value=WorkState.preset_name, on_change=WorkState.set_preset_name,
                         data_testid="preset-name"),
                rx.cond(
                    (WorkState.user_role == "admin") | (WorkState.user_role == "head"),
                    rx.checkbox(WorkState.t["work.presets.shared_all"], name="shared", size="1"),
                ),
                rx.button(rx.icon("save", size=13), WorkState.t["work.presets.save"], size="1", variant="soft",
                          type="submit", width="100%", data_testid="preset-save"),
                spacing="2", width="100%",
            ),
            on_submit=WorkState.save_preset,
            reset_on_submit=False,
            width="100%",
        ),
        width="220px", min_width="220px", spacing="2", align="start",
        border_right=f"1px solid {theme.BORDER}", padding_right="14px",
        style=theme.phone(width="100%", min_width="0", border_right="none", padding_right="0",
                          border_bottom=f"1px solid {theme.BORDER}", padding_bottom="12px"),
    )


def _extra_field() -> rx.Component:
    return rx.vstack(
        _title(WorkState.t["work.filter.add_field"]),
        rx.hstack(
            rx.select.root(
                rx.select.trigger(placeholder=WorkState.t["work.filter.choose_field"], width="50%"),
                rx.select.content(rx.foreach(WorkState.extra_field_options,
                                             lambda o: rx.select.item(o.label, value=o.value))),
                value=WorkState.extra_field, on_change=WorkState.set_extra_field, size="1",
            ),
            rx.input(name="extra_value", placeholder=WorkState.t["work.filter.extra_value"], size="1",
                     width="50%"),
            width="100%", spacing="2",
        ),
        rx.hstack(
            rx.input(name="extra_from", placeholder=WorkState.t["work.filter.extra_from"], size="1", width="100%"),
            rx.input(name="extra_to", placeholder=WorkState.t["work.filter.to"], size="1", width="100%"),
            width="100%", spacing="2",
        ),
        spacing="1", width="100%", align="start",
    )


def _filter_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.grid(
                rx.foreach(WorkState.filter_rows, _filter_field),
                columns=rx.breakpoints(initial="1", xs="2"), spacing="3", width="100%",
            ),
            _extra_field(),
            rx.cond(WorkState.has_board,
                    rx.checkbox(WorkState.t["work.filter.only_open"], name="only_open", size="1",
                                default_checked=WorkState.filter_only_open)),
            rx.hstack(
                rx.button(WorkState.t["work.filter.reset"], type="button", variant="ghost", color_scheme="gray",
                          size="2", on_click=WorkState.clear_filters),
                rx.spacer(),
                rx.button(WorkState.t["work.filter.apply"], type="submit", size="2", data_testid="filter-apply"),
                width="100%",
                style=theme.phone(position="sticky", bottom="-16px", background="white", padding="10px 0 12px",
                                  margin_bottom="-16px", z_index="1", border_top=f"1px solid {theme.BORDER}"),
            ),
            spacing="3", width="100%", align="start",
        ),
        on_submit=WorkState.apply_filter_form,
        reset_on_submit=False,
        flex="1",
        min_width="0",
    )


def filter_panel() -> rx.Component:
    # Two sibling forms (presets | fields): HTML forms must not nest.
    # On a phone: a head with «×» (it also takes the first focus, so the keyboard does not
    # pop up over the panel), the presets above the fields, «Найти» kept at the bottom.
    return rx.vstack(
        rx.hstack(
            rx.text(WorkState.t["work.filter.title"], size="3", weight="bold"),
            rx.spacer(),
            rx.popover.close(rx.icon_button(rx.icon("x", size=16), variant="ghost", color_scheme="gray", size="2",
                                            aria_label=WorkState.t["work.filter.close"], data_testid="filter-close")),
            align="center", width="100%", **theme.desktop_hidden(),
        ),
        rx.flex(_presets(), _filter_form(), direction=rx.breakpoints(initial="column", sm="row"),
                spacing="4", align="start", width="100%"),
        spacing="2", width="100%",
    )


def _chip(chip: Chip) -> rx.Component:
    """A removable condition; a long one is cut with «…» (the whole text on hover)."""
    return rx.badge(
        rx.text(chip.label, overflow="hidden", text_overflow="ellipsis", white_space="nowrap", min_width="0"),
        rx.icon("x", size=12, cursor="pointer", on_click=WorkState.remove_chip(chip.key), flex_shrink="0",
                data_testid="chip-remove"),
        variant="soft", color_scheme="blue", size="1", radius="full", data_testid="filter-chip",
        white_space="nowrap", flex_shrink="1", min_width="64px", max_width="230px", title=chip.label,
        padding_y="3px",
    )


def _more_chips() -> rx.Component:
    """«+N»: the conditions that do not fit in the bar, listed (and removable) in a popover."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.badge("+" + WorkState.chips_more.length().to_string(), variant="surface", color_scheme="blue",
                     size="1", radius="full", padding_y="3px", cursor="pointer", flex_shrink="0", margin_right="2px",
                     data_testid="filter-more",
                     title=WorkState.t["work.chips.more"]),
        ),
        rx.popover.content(
            rx.vstack(
                rx.text(WorkState.t["work.chips.more"], size="1", weight="bold", color=theme.TEXT_MUTED),
                rx.foreach(WorkState.chips_more, _chip),
                spacing="2", align="start", data_testid="filter-more-list",
            ),
            side="bottom", align="start", max_width="320px",
        ),
    )


def search_box() -> rx.Component:
    return rx.hstack(
        rx.icon("search", size=15, color=theme.TEXT_MUTED, flex_shrink="0", margin_left="4px"),
        rx.hstack(  # the first chips shrink (cut with «…») before the search box does
            rx.foreach(WorkState.chips_shown, _chip),
            rx.cond(WorkState.chips_more.length() > 0, _more_chips()),
            spacing="1", align="center", flex="0 1 auto", min_width="0", overflow="hidden",
            # on a phone the chips take a line of their own under the search box
            style=theme.phone(order="5", flex="1 1 100%", padding="0 2px 2px",
                              display=rx.cond(WorkState.chips.length() > 0, "flex", "none")),
            data_testid="filter-chips",
        ),
        rx.form(
            rx.input(name="q", value=WorkState.q, on_change=WorkState.set_q,
                     placeholder=WorkState.t["top.search"],
                     title=WorkState.t["work.search.title"],
                     variant="soft", size="2", width="100%", data_testid="search-input",
                     background="transparent", style={"box_shadow": "none"}),
            on_submit=WorkState.search,
            reset_on_submit=False,
            flex="1 0 200px",
            min_width="200px",
            style=theme.phone(flex="1 1 0", min_width="0"),
        ),
        rx.cond(WorkState.chips.length() > 0,
                rx.tooltip(rx.icon_button(rx.icon("x", size=15), variant="ghost", size="2", color_scheme="gray",
                                          on_click=WorkState.clear_filters, data_testid="filter-clear"),
                           content=WorkState.t["work.empty.reset"])),
        rx.popover.root(
            rx.popover.trigger(
                rx.button(rx.icon("sliders-horizontal", size=15),
                          rx.text(WorkState.t["work.filter.title"], style=_PHONE_HIDDEN),
                          variant="soft", size="1", flex_shrink="0", data_testid="filter-open",
                          aria_label=WorkState.t["work.filter.title"],
                          style=theme.phone(height="32px", width="32px", padding="0")),
            ),
            rx.popover.content(filter_panel(), width="860px", max_width="95vw", align="end", side="bottom",
                               style=theme.phone(max_width="calc(100vw - 16px)")),
            open=WorkState.filter_open,
            on_open_change=WorkState.set_filter_open,
        ),
        align="center", spacing="2", flex="1", min_width="0", flex_wrap="nowrap",
        background="white", border=f"1px solid {theme.BORDER}", border_radius="8px", padding="4px 6px",
        height="40px", data_testid="filter-bar",
        # below 1024 px: a line of its own; on a phone the chips (if any) wrap under the search box
        style={theme.NARROW: {"order": "10", "flex": "1 1 100%"},
               theme.PHONE: {"height": "auto", "min_height": "42px", "flex_wrap": "wrap", "row_gap": "4px"}},
    )


_PHONE_HIDDEN = theme.phone(display="none")


def _create_input(f: CreateInput) -> rx.Component:
    """One input of the «Создать» dialog by its kind; a required one shows «*»."""
    required = rx.cond(f.required,
                       rx.input.slot(rx.text("*", color=theme.DANGER, title=WorkState.t["work.create.required"]),
                                     side="right"),
                       rx.fragment())
    control = rx.match(
        f.kind,
        ("note", rx.text(f.placeholder, size="1", color=theme.TEXT_MUTED)),
        ("program", option_select(f.choices, f.placeholder, name=f.name)),
        ("source", option_select(f.choices, f.placeholder, name=f.name)),
        rx.input(required, name=f.name, placeholder=f.placeholder, width="100%", data_testid=f.testid,
                 aria_required=rx.cond(f.required, "true", "false"),
                 input_mode=rx.match(f.kind, ("money", "decimal"), ("phone", "tel"), ("email", "email"), "text")),
    )
    return rx.box(control, width="100%", grid_column=rx.cond(f.half, "auto", "1 / -1"), data_testid="create-field",
                  data_name=f.name)


def _create_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(WorkState.create_title),
            rx.form(
                rx.vstack(
                    rx.grid(rx.foreach(WorkState.create_fields, _create_input),
                            columns=rx.breakpoints(initial="1", xs="2"), spacing="2", width="100%"),
                    rx.cond(WorkState.create_error != "",
                            rx.callout(WorkState.create_error, icon="triangle-alert", color_scheme="red", size="1",
                                       data_testid="create-error")),
                    rx.hstack(rx.dialog.close(rx.button(WorkState.t["common.cancel"], type="button", variant="soft",
                                                        color_scheme="gray")),
                              rx.button(WorkState.t["work.toolbar.create"], type="submit", data_testid="create-submit"),
                              justify="end", width="100%", spacing="2"),
                    spacing="3", width="100%",
                ),
                on_submit=WorkState.create_item, reset_on_submit=False,
            ),
            max_width="520px",
        ),
        open=WorkState.create_open, on_open_change=WorkState.set_create_open,
    )


def toolbar() -> rx.Component:
    """Создать, Канбан/Список, the pipeline, the filter bar, columns, Excel. On a phone the
    buttons keep their icons and the filter bar takes a line of its own under them."""
    return rx.hstack(
        rx.button(rx.icon("plus", size=15), rx.text(WorkState.t["work.toolbar.create"], style=_PHONE_HIDDEN), size="2",
                  on_click=WorkState.set_create_open(True), data_testid="create-open",
                  aria_label=WorkState.t["work.toolbar.create"],
                  style=theme.phone(width="36px", padding="0", flex_shrink="0")),
        _create_dialog(),
        rx.cond(
            WorkState.has_board,
            rx.segmented_control.root(
                rx.segmented_control.item(rx.hstack(rx.icon("kanban", size=14),
                                                    rx.text(WorkState.t["work.view.kanban"], style=_PHONE_HIDDEN),
                                                    spacing="1", align="center"),
                                          value="kanban", aria_label=WorkState.t["work.view.kanban"]),
                rx.segmented_control.item(rx.hstack(rx.icon("list", size=14),
                                                    rx.text(WorkState.t["work.view.list"], style=_PHONE_HIDDEN),
                                                    spacing="1", align="center"),
                                          value="list", aria_label=WorkState.t["work.view.list"]),
                value=WorkState.view, on_change=WorkState.set_view, size="2", data_testid="view-switch",
                style=theme.phone(flex_shrink="0", **{"& .rt-SegmentedControlItemLabel": {
                    "padding_left": "12px", "padding_right": "12px"}}),
            ),
        ),
        rx.cond(
            WorkState.pipeline_options.length() > 1,
            rx.select.root(
                rx.select.trigger(data_testid="pipeline-select", style=theme.phone(flex="1 1 0", min_width="0")),
                rx.select.content(rx.foreach(WorkState.pipeline_options,
                                             lambda o: rx.select.item(o.label, value=o.value))),
                value=WorkState.pipeline_id.to_string(), on_change=WorkState.set_pipeline, size="2",
            ),
        ),
        search_box(),
        rx.cond(
            ~WorkState.is_kanban,
            rx.tooltip(rx.icon_button(rx.icon("settings-2", size=16), variant="soft", size="2",
                                      on_click=WorkState.open_chooser, data_testid="column-chooser",
                                      aria_label=WorkState.t["work.columns.title"], style=theme.phone(flex_shrink="0")),
                       content=WorkState.t["work.columns.title"]),
        ),
        import_button(WorkState.page),
        rx.button(
            rx.cond(WorkState.export_running,
                    rx.hstack(rx.spinner(size="1"), rx.text(WorkState.export_progress.to_string() + "%"),
                              spacing="1", align="center"),
                    rx.hstack(rx.icon("file-spreadsheet", size=15), rx.text("Excel", style=_PHONE_HIDDEN),
                              spacing="1", align="center")),
            variant="soft", size="2", on_click=WorkState.start_export, disabled=WorkState.export_running,
            data_testid="export-button", aria_label="Excel",
            style={theme.NARROW: {"margin_left": "auto"},
                   theme.PHONE: {"min_width": "36px", "padding_x": "8px", "flex_shrink": "0"}},
        ),
        width="100%", align="center", spacing=rx.breakpoints(initial="2", sm="3"),
        style=theme.narrow(flex_wrap="wrap"),
    )


def missing_input(f: MissingField) -> rx.Component:
    """One required field in a dialog, with the control of its kind (forms.field_control):
    a program or a user from a searchable list, a date picker (ДД.ММ.ГГГГ), a yes/no switch,
    an enum's options; text boxes are `missing-input`, other controls `missing-<key>`."""
    from rxcrm.components.forms import field_control
    return rx.vstack(
        rx.text(f.label, size="2", weight="medium"),
        field_control(f, "missing-input", "missing-" + f.key),
        rx.cond(f.error != "", rx.text(f.error, size="1", color=theme.DANGER, data_testid="missing-error")),
        spacing="1", width="100%", align="start", data_testid="missing-field", data_kind=f.kind,
    )


def missing_fields_dialog(state=WorkState) -> rx.Component:
    """"Заполните обязательные поля": shown when a stage move is refused for missing fields.
    `state` needs missing_open/missing_message/missing_fields/submit_missing/close_missing."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(state.t["work.missing.title"]),
            rx.callout(state.missing_message, icon="info", color_scheme="amber", size="1",
                       data_testid="move-refused"),
            rx.form(
                rx.vstack(
                    rx.foreach(state.missing_fields, missing_input),
                    rx.hstack(
                        rx.dialog.close(rx.button(state.t["common.cancel"], type="button", variant="soft",
                                                  color_scheme="gray", on_click=state.close_missing)),
                        rx.button(state.t["work.missing.submit"], type="submit", data_testid="missing-submit"),
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="3", padding_top="12px",
                ),
                on_submit=state.submit_missing,
                reset_on_submit=False,
            ),
            max_width="460px",
        ),
        open=state.missing_open,
        on_open_change=lambda v: state.close_missing(),
    )
