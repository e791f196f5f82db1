"""Required fields per stage .

An item may enter the stage only when every listed field has a value; otherwise the
move is refused and the UI asks for exactly these fields. Keys are field keys of the
entity's field catalog (services/fields.py); custom fields are "custom.<code>".

    (pipeline code, stage code): [field keys]

These are the shipped defaults: services/bootstrap.py writes them once into the
`automation_rule` table (kind "required"); afterwards the table is the truth (admins edit
it on /settings → Правила) and rules_engine reads the active rows.
"""
from __future__ import annotations

REQUIRED_FIELDS: dict[tuple[str, str], list[str]] = {
    # Leads: before "Образовательная программа" the program must be chosen.
    ("leads", "PROGRAM"): ["program_id"],
    # ДПО: a contract needs its number; the prepayment stage needs the first payment.
    ("dpo", "CONTRACT"): ["custom.dpo_contract_number"],
    ("dpo", "PREPAYMENT"): ["first_payment_amount"],
    # Магистратура: "Все экзамены сданы" needs the total score.
    ("masters", "EXAMS_PASSED"): ["custom.masters_exam_score"],
    ("masters", "PAYMENT"): ["amount"],
}
