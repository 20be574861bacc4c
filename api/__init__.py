"""The points API over HTTP (FastAPI): an adapter over `core` that decides nothing."""
