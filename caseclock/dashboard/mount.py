"""Serving the dashboard from the API app: every path outside ``/api/`` goes to it.

The API authenticates every request with a bearer credential in a middleware; the
dashboard signs people in with a session cookie instead. :func:`mount_dashboard` adds a
dispatching middleware *outside* the API's, so dashboard paths never meet the bearer check
and API paths never meet the dashboard: each keeps its own authentication, errors
(problem details for the API, HTML pages for people) and routes.
"""

from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from caseclock.api.services import ApiServices

API_PATHS = "/api/"


class DashboardDispatch:
    """Sends HTTP requests outside ``/api/`` to the dashboard, the rest to the API.

    Args:
        app: The API app (and its middleware) behind this one.
        dashboard: The dashboard app.

    """

    def __init__(self, app: ASGIApp, dashboard: ASGIApp) -> None:
        self._api = app
        self._dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection by its path."""
        if scope["type"] == "http" and not str(scope["path"]).startswith(API_PATHS):
            await self._dashboard(scope, receive, send)
            return
        await self._api(scope, receive, send)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard from ``app``, the API built by ``caseclock.api.create_app``.

    Call it after the API's authentication middleware is added: the middleware added last
    runs first, so the dashboard's paths are dispatched before any bearer check.

    Raises:
        DashboardAssetsMissingError: If GOV.UK Frontend is not installed.

    """
    # Imported here: the dashboard builds on caseclock.api, whose app module imports this.
    from caseclock.dashboard.app import create_dashboard  # noqa: PLC0415

    services: ApiServices = app.state.services
    app.add_middleware(DashboardDispatch, dashboard=create_dashboard(services))
