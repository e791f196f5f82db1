"""merge record (duplicates: what a merge moved, for its undo from the recycle bin) and the
duplicate-groups index of communication

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 11:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json():
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('merge_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('survivor_id', sa.Integer(), nullable=False),
    sa.Column('merged_id', sa.Integer(), nullable=False),
    sa.Column('moved', _json(), nullable=False),
    sa.Column('before', _json(), nullable=False),
    sa.Column('after', _json(), nullable=False),
    sa.Column('survivor_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('undone_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['crm_user.id'], ),
    sa.ForeignKeyConstraint(['undone_by_id'], ['crm_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('merge_record', schema=None) as batch_op:
        batch_op.create_index('ix_merge_record_merged', ['entity_type', 'merged_id'], unique=False)
        batch_op.create_index('ix_merge_record_survivor', ['entity_type', 'survivor_id'], unique=False)
    # the duplicate groups: GROUP BY kind, norm of one entity from the index alone
    op.create_index('ix_comm_dup', 'communication', ['entity_type', 'kind', 'norm', 'entity_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_comm_dup', table_name='communication')
    with op.batch_alter_table('merge_record', schema=None) as batch_op:
        batch_op.drop_index('ix_merge_record_survivor')
        batch_op.drop_index('ix_merge_record_merged')

    op.drop_table('merge_record')
