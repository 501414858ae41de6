"""The HTTP API: FastAPI routes over the same case path as the CLI (``caseclock.casework``).

``create_app`` builds the app from a Temporal client, read-model sessions and definitions;
``caseclock.api.main`` is the entry point that creates those and serves the app.
"""

from caseclock.api.app import create_app

__all__ = ["create_app"]
