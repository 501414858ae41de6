"""Alembic migrations of the read model, shipped inside the package."""
