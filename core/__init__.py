"""The points engine: members, the points ledger, the redemption rules, validation codes.

Nothing in this package knows about Telegram or the bot: entry points (the bot, the
CLI, the sandbox) translate what a person did into calls on `core.service.PointsService`
and show what it answers.
"""
