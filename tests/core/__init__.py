"""The core suite: the engine on real databases (SQLite files and PostgreSQL)."""
