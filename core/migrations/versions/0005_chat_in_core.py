"""the chat in core: the pending redemption in columns, and the code delivery outbox

`chat_state` keeps the pending redemption's transaction number and button token in columns
of their own instead of JSON the bot packed into `data`; existing rows are carried over
(a finished redemption's chat, step "done", and an idle one are back at the menu).
`code_delivery` holds validation codes waiting to be sent after the transaction that
issued them commits. `handled_update` keeps each update's replies, to answer a
redelivery again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:00:00.000000
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_STEPS = ('confirm', 'code')


def upgrade() -> None:
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transaction_number', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('token', sa.String(length=8), nullable=True))
    state = sa.table('chat_state', sa.column('channel_user', sa.String()),
                     sa.column('step', sa.String()), sa.column('data', sa.String()),
                     sa.column('points', sa.BigInteger()),
                     sa.column('external_reference', sa.String()),
                     sa.column('transaction_number', sa.String()),
                     sa.column('token', sa.String()))
    connection = op.get_bind()
    for user, step, data in connection.execute(
            sa.select(state.c.channel_user, state.c.step, state.c.data)).all():
        try:
            packed = json.loads(data or '{}')
            txn, token = str(packed['txn']), str(packed['token'])
        except (ValueError, KeyError, TypeError):
            txn = token = None
        if step in PENDING_STEPS and txn and token and len(txn) <= 64 and len(token) <= 8:
            values = {'transaction_number': txn, 'token': token}
        elif step == 'amount':
            values = {'points': None, 'external_reference': None}
        else:
            values = {'step': 'menu', 'points': None, 'external_reference': None}
        connection.execute(state.update().where(state.c.channel_user == user)
                           .values(**values))
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.drop_column('data')
    with op.batch_alter_table('handled_update', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.Text(), nullable=True))
    op.create_table(
        'code_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code_id', sa.Integer(), nullable=False),
        sa.Column('resent', sa.Boolean(), nullable=False),
        sa.Column('channel_user', sa.String(length=64), nullable=True),
        sa.Column('reply_to', sa.String(length=64), nullable=True),
        sa.Column('token', sa.String(length=8), nullable=True),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['code_id'], ['validation_code.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_code_delivery_state_created', 'code_delivery',
                    ['state', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_code_delivery_state_created', table_name='code_delivery')
    op.drop_table('code_delivery')
    with op.batch_alter_table('handled_update', schema=None) as batch_op:
        batch_op.drop_column('outcome')
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data', sa.String(length=2000), nullable=False,
                                      server_default=''))
        batch_op.drop_column('token')
        batch_op.drop_column('transaction_number')
