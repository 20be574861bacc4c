"""The unit tier: the engine's rules on plain objects, no database at all."""
