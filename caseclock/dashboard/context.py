"""What every dashboard page shares: the services, the signed-in person, forms and rendering.

:class:`Dashboard` is built once by ``create_dashboard`` and kept in the app's state; pages
get it, and the signed-in :class:`~caseclock.dashboard.session.Session`, as FastAPI
dependencies. A page that needs a session and has none raises :class:`SignInRequiredError`
(the error pages turn it into a redirect to the sign-in page); a posted form is checked for
its session's CSRF token and for a same-origin ``Origin`` before anything is read from it.
"""

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from caseclock.api.auth import Role
from caseclock.api.services import ApiServices
from caseclock.dashboard.assets import Assets
from caseclock.dashboard.labels import Labels
from caseclock.dashboard.queries import DashboardQueries
from caseclock.dashboard.session import Session, SessionCookies, csrf_ok
from caseclock.dashboard.templating import Templates
from caseclock.db.performance import Performance
from caseclock.db.read_model import ReadModel

# Who may open the performance pages (their scope still applies).
PERFORMANCE_ROLES = (Role.MANAGER, Role.LEADER, Role.ADMIN)
# Who may acknowledge or reassign an alert (as the API's acknowledge route).
OVERSIGHT_ROLES = (Role.MANAGER, Role.LEADER, Role.ADMIN)


class SignInRequiredError(Exception):
    """The page needs a signed-in person; ``next_path`` is where to return afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


class DashboardError(Exception):
    """A refusal shown as an error page: status, a title and what to do."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class NavItem:
    """A link in the service navigation."""

    href: str
    text: str
    current: bool


@dataclass(frozen=True)
class Dashboard:
    """Everything the pages use, built once per app."""

    services: ApiServices
    cookies: SessionCookies
    templates: Templates
    queries: DashboardQueries
    read_model: ReadModel
    performance: Performance
    labels: Labels
    assets: Assets
    dev_sign_in: bool
    poll_seconds: int

    def navigation(self, session: Session | None, path: str) -> list[NavItem]:
        """The service navigation for a person on a page."""
        if session is None:
            return []
        items = [("/", "My work"), ("/inbox", "Escalation inbox")]
        if session.has(*PERFORMANCE_ROLES):
            items.append(("/performance", "Performance"))
        return [
            NavItem(href, text, current=path == href or (href != "/" and path.startswith(href)))
            for href, text in items
        ]

    def page(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        session: Session | None,
        status: int = 200,
    ) -> HTMLResponse:
        """A whole page: the template inside the layout, with the flash message if any."""
        flash = self.cookies.read_flash(request)
        html = self.templates.render(
            template,
            {
                "session": session,
                "csrf": session.csrf if session else "",
                "navigation": self.navigation(session, request.url.path),
                "flash": flash,
                "errors": [],
                **context,
            },
        )
        response = HTMLResponse(html, status_code=status)
        if flash is not None:
            self.cookies.clear_flash(request, response)
        return response


def get_dashboard(request: Request) -> Dashboard:
    """FastAPI dependency: the dashboard's shared services."""
    board: Dashboard = request.app.state.dashboard
    return board


Board = Annotated[Dashboard, Depends(get_dashboard)]


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def signed_in(request: Request, board: Board) -> Session:
    """FastAPI dependency: the signed-in person, or a redirect to the sign-in page."""
    session = board.cookies.session(request)
    if session is None:
        raise SignInRequiredError(_here(request))
    return session


Person = Annotated[Session, Depends(signed_in)]


def same_origin(request: Request) -> bool:
    """Whether a request's ``Origin`` (when the browser sends one) is this site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def posted_form(request: Request, person: Person) -> FormData:
    """FastAPI dependency: a form posted from one of this session's pages, or a 403 page."""
    form = await request.form()
    token = form.get("csrf_token")
    if not same_origin(request) or not csrf_ok(person, token if isinstance(token, str) else None):
        raise DashboardError(
            403,
            "This form has expired",
            "The form was not sent from this session's page, so nothing was changed. "
            "Go back, reload the page and try again.",
        )
    return form


Form = Annotated[FormData, Depends(posted_form)]


def field(form: FormData, name: str) -> str:
    """A text field of a posted form, stripped ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def require_role(session: Session, roles: tuple[Role, ...], what: str) -> None:
    """Refuse (403 page) a person without any of these roles."""
    if not session.has(*roles):
        names = ", ".join(role.value for role in roles)
        raise DashboardError(
            403, "You do not have access to this page", f"{what} needs one of the roles: {names}."
        )
