"""The dashboard app: pages, static files, security headers and error pages.

``create_dashboard`` builds it from the API's services, so both use one Temporal client, one
database and the same scoping code. It fails at once, with the command to run, if GOV.UK
Frontend is not installed.
"""

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caseclock.api.services import ApiServices
from caseclock.dashboard.assets import Assets, find_assets
from caseclock.dashboard.context import Dashboard
from caseclock.dashboard.errors import install_error_pages
from caseclock.dashboard.labels import Labels
from caseclock.dashboard.pages_case import router as case_router
from caseclock.dashboard.pages_inbox import router as inbox_router
from caseclock.dashboard.pages_performance import router as performance_router
from caseclock.dashboard.pages_work import router as work_router
from caseclock.dashboard.queries import DashboardQueries
from caseclock.dashboard.session import SessionCookies
from caseclock.dashboard.sign_in import router as sign_in_router
from caseclock.dashboard.templating import Templates
from caseclock.db.performance import Performance
from caseclock.db.read_model import ReadModel
from caseclock.settings import Environment

# How often the inbox script asks for changes, in seconds.
POLL_SECONDS = 10
STATIC_PREFIXES = ("/static/", "/assets/")
# Scripts and styles come only from this site (no inline script, no inline style), so an
# injected tag cannot run; forms post only here; no page can be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


class SecurityHeaders:
    """Adds the security headers to every response, and ``no-store`` to pages.

    Pages carry case references and notes: browsers and proxies must not keep them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding headers to the response."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        static = str(scope["path"]).startswith(STATIC_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _assets_router(assets: Assets) -> APIRouter:
    router = APIRouter()

    @router.get("/assets/{name}", include_in_schema=False)
    async def govuk_file(name: str) -> FileResponse:
        """GOV.UK Frontend's compiled stylesheet or script."""
        path = assets.govuk_file(name)
        if path is None:
            raise HTTPException(404)
        return FileResponse(path)

    return router


def create_dashboard(services: ApiServices, assets: Assets | None = None) -> FastAPI:
    """The dashboard over the API's services.

    Args:
        services: The services of the API app (client, sessions, definitions, scoping).
        assets: Where GOV.UK Frontend is; found in ``node_modules`` by default.

    Returns:
        The dashboard app; ``mount_dashboard`` serves it from the API's process.

    Raises:
        DashboardAssetsMissingError: If GOV.UK Frontend is not installed.

    """
    assets = assets or find_assets()
    settings = services.settings
    development = settings.environment is Environment.DEVELOPMENT
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = Dashboard(
        services=services,
        cookies=SessionCookies(
            settings.auth.session_secret.get_secret_value(), secure=not development
        ),
        templates=Templates(),
        queries=DashboardQueries(services.sessions),
        read_model=ReadModel(services.sessions),
        performance=Performance(services.sessions),
        labels=Labels(services.definitions),
        assets=assets,
        # Settings refuse this outside development already; checked again here.
        dev_sign_in=development and settings.auth.dev_sign_in,
        poll_seconds=POLL_SECONDS,
    )
    app.add_middleware(SecurityHeaders)
    install_error_pages(app)
    app.mount("/assets/images", StaticFiles(directory=assets.images), name="images")
    app.mount("/static", StaticFiles(directory=assets.static), name="static")
    for router in (
        _assets_router(assets),
        sign_in_router,
        work_router,
        inbox_router,
        case_router,
        performance_router,
    ):
        app.include_router(router)
    return app
