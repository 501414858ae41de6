"""Temporal activities: the side effects the process core asks for, each idempotent."""
