"""one chat link per member: the newest verification wins

A member is linked to one chat user (Telegram account) at most. Where several were linked
to one member, the newest link (then the highest chat user id) is kept; the others lose
the member and are marked `replaced_at`, so their chats are asked to verify again and told
why. The unique constraint indexes member_id, so its plain index goes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 09:00:00.000000
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chat_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaced_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.alter_column('member_id', existing_type=sa.Integer(), nullable=True)
    link = sa.table('chat_link', sa.column('channel_user', sa.String()),
                    sa.column('member_id', sa.Integer()),
                    sa.column('created_at', sqlmodel.sql.sqltypes.UTCDateTime()),
                    sa.column('replaced_at', sqlmodel.sql.sqltypes.UTCDateTime()))
    newer = link.alias('newer')
    op.execute(link.update().where(sa.exists().where(
        newer.c.member_id == link.c.member_id,
        sa.or_(newer.c.created_at > link.c.created_at,
               sa.and_(newer.c.created_at == link.c.created_at,
                       newer.c.channel_user > link.c.channel_user)))).values(
        member_id=None, replaced_at=datetime.now(UTC)))
    with op.batch_alter_table('chat_link', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_link_member_id')
        batch_op.create_unique_constraint('uq_chat_link_member_id', ['member_id'])


def downgrade() -> None:
    op.execute(sa.text('DELETE FROM chat_link WHERE member_id IS NULL'))
    with op.batch_alter_table('chat_link', schema=None) as batch_op:
        batch_op.drop_constraint('uq_chat_link_member_id', type_='unique')
        batch_op.create_index('ix_chat_link_member_id', ['member_id'], unique=False)
        batch_op.alter_column('member_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('replaced_at')
