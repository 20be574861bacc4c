"""staff care: goodwill references, who a staff line concerns, the linked account's name,
a staff chat's pending goodwill grant

`goodwill_grant` keeps each goodwill grant given with a reference, so the reference issues
once. `staff_action.member_id` names the member a staff line concerns (lines written
before have none), indexed with `staff` for the staff log's filters. `chat_link` keeps
the chat user's name as given at verification; `chat_state` a staff chat's pending
goodwill grant (its member and reason) while it waits for Confirm.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 15:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'goodwill_grant',
        sa.Column('reference', sa.String(length=64), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('entry_reference', sa.String(length=128), nullable=False),
        sa.Column('staff', sa.String(length=128), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id']),
        sa.PrimaryKeyConstraint('reference'),
    )
    with op.batch_alter_table('goodwill_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goodwill_grant_member_id'), ['member_id'],
                              unique=False)
    with op.batch_alter_table('staff_action', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_staff_action_member_id', ['member_id', 'id'], unique=False)
        batch_op.create_index('ix_staff_action_staff', ['staff', 'id'], unique=False)
    with op.batch_alter_table('chat_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=200), nullable=True))
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.drop_column('reason')
        batch_op.drop_column('member_id')
    with op.batch_alter_table('chat_link', schema=None) as batch_op:
        batch_op.drop_column('display_name')
    with op.batch_alter_table('staff_action', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_action_staff')
        batch_op.drop_index('ix_staff_action_member_id')
        batch_op.drop_column('member_id')
    with op.batch_alter_table('goodwill_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goodwill_grant_member_id'))
    op.drop_table('goodwill_grant')
