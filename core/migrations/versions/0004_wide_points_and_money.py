"""wide points and money: BIGINT for every points column, NUMERIC(20, 2) for money

A lifetime total past 2^31, or one large earning, overflowed PostgreSQL's INTEGER while
SQLite (whose INTEGER is 64-bit) stored it: both now hold what core.limits allows. On
SQLite the tables are rebuilt in batch mode (the data, keys, indexes and CHECKs are kept).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> [(column, nullable)], points and money columns
POINTS = {
    'member': [('current_points', False), ('lifetime_points', False)],
    'ledger_entry': [('points', False), ('lifetime_points', False)],
    'bill': [('points', False)],
    'redemption': [('points', False), ('balance_after', False), ('points_reversed', False)],
    'reversal': [('points', False)],
    'validation_code': [('points', False)],
    'chat_state': [('points', True)],
}
MONEY = {
    'member': ['lifetime_purchases'],
    'bill': ['amount'],
    'redemption': ['redeemed_value'],
}


def _alter(wide: bool) -> None:
    points_from, points_to = ((sa.Integer(), sa.BigInteger()) if wide
                              else (sa.BigInteger(), sa.Integer()))
    money_from, money_to = ((sa.Numeric(14, 2), sa.Numeric(20, 2)) if wide
                            else (sa.Numeric(20, 2), sa.Numeric(14, 2)))
    for table in POINTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, nullable in POINTS[table]:
                batch_op.alter_column(column, existing_type=points_from, type_=points_to,
                                      existing_nullable=nullable)
            for column in MONEY.get(table, []):
                batch_op.alter_column(column, existing_type=money_from, type_=money_to,
                                      existing_nullable=False)


def upgrade() -> None:
    _alter(wide=True)


def downgrade() -> None:
    _alter(wide=False)
