"""chat language: the language a chat speaks, kept with the chat

`chat_state.language` holds a shipped catalogue's language ("en", "hi"): the one the
messaging app named at first contact (kept when the member verifies), or the member's choice (/language). Existing chats
have none: they speak their app's language (or DEFAULT_LANGUAGE) until they next change
state, which keeps it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 15:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chat_state', schema=None) as batch_op:
        batch_op.drop_column('language')
