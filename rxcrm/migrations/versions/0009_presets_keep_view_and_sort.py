"""a preset names its whole view: board/list and the list's order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('filter_preset', schema=None) as batch_op:
        batch_op.add_column(sa.Column('view_mode', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('list_sort', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('list_desc', sa.Boolean(), nullable=False, server_default=sa.false()))
    # «Очередь» was a special case in code: now its row says it (a list in queue order).
    op.execute("UPDATE filter_preset SET view_mode = 'list', list_sort = 'queue' "
               "WHERE code = 'queue' AND is_builtin")
    with op.batch_alter_table('filter_preset', schema=None) as batch_op:
        batch_op.alter_column('view_mode', server_default=None)
        batch_op.alter_column('list_sort', server_default=None)
        batch_op.alter_column('list_desc', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('filter_preset', schema=None) as batch_op:
        batch_op.drop_column('list_desc')
        batch_op.drop_column('list_sort')
        batch_op.drop_column('view_mode')
