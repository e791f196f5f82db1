"""lead and deal: drop the single-column indexes that a composite index already starts with

`ix_<t>_responsible_id` is the head of `ix_<t>_resp_sem`, `ix_<t>_created_at` of
`ix_<t>_created_cover`, `ix_<t>_pipeline_id` of `ix_<t>_board`: every lookup they served
the composite serves as well, and each new or moved item paid for one more B-tree (an
import of 100k leads: ~3 s). Contacts and companies keep theirs (no composite there).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 15:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = ("responsible_id", "created_at", "pipeline_id")


def upgrade() -> None:
    for table in ("lead", "deal"):
        for column in DROPPED:
            op.drop_index(f"ix_{table}_{column}", table_name=table)


def downgrade() -> None:
    for table in ("lead", "deal"):
        for column in DROPPED:
            op.create_index(f"ix_{table}_{column}", table, [column], unique=False)
