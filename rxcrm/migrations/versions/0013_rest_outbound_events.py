"""rest outbound events

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:58:02.345352
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rest_event_binding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('handler', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('application_token', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('webhook_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['crm_user.id'], ),
    sa.ForeignKeyConstraint(['webhook_id'], ['rest_webhook.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rest_event_binding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rest_event_binding_event'), ['event'], unique=False)

    op.create_table('rest_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('binding_id', sa.Integer(), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['binding_id'], ['rest_event_binding.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rest_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rest_outbox_binding_id'), ['binding_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rest_outbox_next_at'), ['next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rest_outbox_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('rest_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rest_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_rest_outbox_next_at'))
        batch_op.drop_index(batch_op.f('ix_rest_outbox_binding_id'))

    op.drop_table('rest_outbox')
    with op.batch_alter_table('rest_event_binding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rest_event_binding_event'))

    op.drop_table('rest_event_binding')
