"""Alembic revision scripts (Alembic skips this file when it reads revisions)."""
