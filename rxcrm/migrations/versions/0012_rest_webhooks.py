"""rest webhooks: Bitrix24-style inbound webhooks (rxcrm/rest)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:25:08.278532
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rest_webhook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['crm_user.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['crm_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rest_webhook', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rest_webhook_code_hash'), ['code_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_rest_webhook_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rest_webhook', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rest_webhook_user_id'))
        batch_op.drop_index(batch_op.f('ix_rest_webhook_code_hash'))
    op.drop_table('rest_webhook')
