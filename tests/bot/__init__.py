"""The bot suite: the real bot end to end against a stand-in Bot API."""
