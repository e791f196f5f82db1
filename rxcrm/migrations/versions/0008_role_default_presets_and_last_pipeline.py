"""role default presets; the last pipeline chosen per user and page

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('preset_role_default',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('preset_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['preset_id'], ['filter_preset.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('page', 'role_code')
    )
    with op.batch_alter_table('user_page_setting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pipeline_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user_page_setting', schema=None) as batch_op:
        batch_op.drop_column('pipeline_id')
    op.drop_table('preset_role_default')
