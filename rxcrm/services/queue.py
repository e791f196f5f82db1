"""«Очередь»: a manager's work order for open leads .

The sort key "queue" of listing.query_items / list_page / ordered_ids (the built-in
preset «Очередь», code "queue", on /leads: my leads in work). Leads are ranked:

    0  new          — stage «Не обработан» (NEW): nobody has worked on them yet
    1  near a deal  — stage «Образовательная программа» (PROGRAM): the program is chosen
    2  meeting      — a meeting is planned (an open activity of kind "meeting"): confirmed
    3  to schedule  — stages «Знакомство», «Уровень образования», «Сфера интересов»
                      (ACQUAINTANCE, EDUCATION_LEVEL, INTERESTS): a meeting is still to be set
    4  unreachable  — the lead's last done call has a result containing «не удалось
                      связаться» or «недоступен» (either case of the first letter)

Precedence when several apply: NEW first always; then a planned meeting (it beats
"unreachable": the client was reached since); then unreachable (beats the stage);
then the stage. Any other open stage counts as 3. Within a rank: leads without a planned
activity first, then by the nearest planned activity, then the oldest first, then id.
The order is fixed: the `desc` flag of the list is ignored for this key.
"""
from __future__ import annotations

from sqlalchemy import case, exists, false, or_, select, true

from rxcrm.models import Activity, Lead, Stage
from rxcrm.models.activity import CALL, MEETING

from .errors import ValidationFailed

SORT_KEY = "queue"
PRESET_CODE = "queue"
NEW_STAGES = ("NEW",)
NEAR_DEAL_STAGES = ("PROGRAM",)
TO_SCHEDULE_STAGES = ("ACQUAINTANCE", "EDUCATION_LEVEL", "INTERESTS")
# Matched with LIKE without the first letter, so «Не…»/«не…» both match on SQLite too
# (its LIKE folds only ASCII case).
UNREACHABLE_MARKS = ("не удалось связаться", "недоступен")
RANK_LABEL = {0: "Новые", 1: "Близко к сделке", 2: "Встреча назначена", 3: "Назначить встречу",
              4: "Не удалось связаться"}


def _meeting_planned(model):
    return exists().where(Activity.entity_type == "lead", Activity.entity_id == model.id,
                          Activity.kind == MEETING, Activity.done == false())


def _unreachable(model):
    last_call = (select(Activity.result)
                 .where(Activity.entity_type == "lead", Activity.entity_id == model.id, Activity.kind == CALL,
                        Activity.done == true())
                 .order_by(Activity.done_at.desc(), Activity.id.desc()).limit(1).scalar_subquery())
    return or_(*[last_call.like(f"%{m[1:]}%") for m in UNREACHABLE_MARKS])


def rank_expression(model=Lead):
    """The rank (0–4, see the module doc) as a SQL CASE; needs `Stage` joined on the item's stage."""
    return case(
        (Stage.code.in_(NEW_STAGES), 0),
        (_meeting_planned(model), 2),
        (_unreachable(model), 4),
        (Stage.code.in_(NEAR_DEAL_STAGES), 1),
        (Stage.code.in_(TO_SCHEDULE_STAGES), 3),
        else_=3,
    )


def order_expression(model, entity: str = "lead"):
    """(joins, order_by) in the form listing._order returns."""
    if entity != "lead" or model is not Lead:
        raise ValidationFailed("Очередь есть только у лидов")
    joins = [(Stage, Stage.id == model.stage_id)]
    order = [rank_expression(model), case((model.next_activity_at.is_(None), 0), else_=1),
             model.next_activity_at.asc(), model.created_at.asc(), model.id.asc()]
    return joins, order


def is_queue_preset(preset) -> bool:
    """The UI sorts by "queue" while this preset is active."""
    return getattr(preset, "code", None) == PRESET_CODE


__all__ = ["PRESET_CODE", "RANK_LABEL", "SORT_KEY", "is_queue_preset", "order_expression", "rank_expression"]
