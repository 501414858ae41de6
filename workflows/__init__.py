"""Temporal workflows: durable shells around the pure process core."""
