"""covering indexes of leads and deals by creation date (analytics dynamics and conversion)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:10:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLS = ['created_at', 'pipeline_id', 'deleted_at', 'department_id', 'responsible_id', 'semantic', 'source',
        'program_id', 'utm_campaign', 'amount']


def upgrade() -> None:
    for table in ('lead', 'deal'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_created_cover', COLS, unique=False)


def downgrade() -> None:
    for table in ('lead', 'deal'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_created_cover')
