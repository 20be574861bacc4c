"""Benchmarks of the loyalty points service: each row measures a figure and a baseline in
the same run and prints their ratio against a goal; nothing here asserts on timing.

Run `python -m benchmarks` (full, up to ~15 minutes) or `python -m benchmarks --quick`
(under a minute, for CI: it exits 0 whether or not goals are met). One module per row:

1. `bot_overhead`: the Telegram bot's full stack against a minimal echo bot.
2. `redemption_cycle`: is_redeemable + issue code + redeem against plain sqlite3 commits.
3. `scale`: balance + is_redeemable latency at 1,000 against 1,000,000 members.
4. `postgres_scaleout`: redemption cycles per second from 4 processes against 1.
"""
