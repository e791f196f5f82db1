"""stage_history.prev_at and the covering index of the analytics scans

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 21:40:00

`prev_at` = when the item entered `from_stage_id` (written by every move from now on),
so time in stage is `created_at - prev_at` without a self-join; existing rows are
backfilled from the previous entry of the same item. `ix_stage_hist_cover` replaces
`ix_stage_hist_pipe` (its prefix) and lets a period of one pipeline be read from the index.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVER = ['entity_type', 'pipeline_id', 'created_at', 'entity_id', 'stage_id', 'from_stage_id', 'prev_at']


def upgrade() -> None:
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE stage_history SET prev_at = (SELECT max(p.created_at) FROM stage_history p "
        "WHERE p.entity_type = stage_history.entity_type AND p.entity_id = stage_history.entity_id "
        "AND p.created_at < stage_history.created_at) WHERE from_stage_id IS NOT NULL")
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_hist_pipe')
        batch_op.create_index('ix_stage_hist_cover', COVER, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_hist_cover')
        batch_op.create_index('ix_stage_hist_pipe', ['entity_type', 'pipeline_id', 'created_at'], unique=False)
        batch_op.drop_column('prev_at')
