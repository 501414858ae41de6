"""Where the dashboard's front-end files come from: GOV.UK Frontend in ``node_modules``.

The package is installed by ``./run`` (``npm ci`` from ``package-lock.json``), never copied
into the repository. Only what the pages use is served: the compiled stylesheet and script,
and the images. The GDS Transport font files are not served: that typeface is licensed for
services on GOV.UK only, and Caseclock is an authority's own service (the stylesheet in
``static/`` maps the font name to Arial).
"""

from dataclasses import dataclass
from pathlib import Path

GOVUK_DIST = Path("node_modules", "govuk-frontend", "dist", "govuk")
STYLESHEET = "govuk-frontend.min.css"
SCRIPT = "govuk-frontend.min.js"
STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"


class DashboardAssetsMissingError(RuntimeError):
    """GOV.UK Frontend is not installed where the dashboard looks for it."""


@dataclass(frozen=True)
class Assets:
    """The folders the dashboard serves files from."""

    govuk: Path
    static: Path = STATIC

    @property
    def images(self) -> Path:
        """GOV.UK Frontend's images (favicons, icons)."""
        return self.govuk / "assets" / "images"

    def govuk_file(self, name: str) -> Path | None:
        """The compiled stylesheet or script of GOV.UK Frontend, or None for any other name."""
        return self.govuk / name if name in (STYLESHEET, SCRIPT) else None


def default_roots() -> list[Path]:
    """Where ``node_modules`` may be: the repository this package lives in, then the cwd."""
    return [Path(__file__).resolve().parents[2], Path.cwd()]


def find_assets(roots: list[Path] | None = None) -> Assets:
    """GOV.UK Frontend's files under the first root that has them.

    Raises:
        DashboardAssetsMissingError: If no root has ``node_modules/govuk-frontend``, with
            the places looked in and the command that installs it.

    """
    searched = roots if roots is not None else default_roots()
    for root in searched:
        govuk = root / GOVUK_DIST
        if (govuk / STYLESHEET).is_file() and (govuk / SCRIPT).is_file():
            return Assets(govuk=govuk)
    places = ", ".join(str(root / GOVUK_DIST) for root in searched)
    msg = (
        f"the dashboard needs GOV.UK Frontend, which is not installed (looked in {places}); "
        "run ./run once (it runs 'npm ci' from package-lock.json), or 'npm ci' in the "
        "repository root, then start again"
    )
    raise DashboardAssetsMissingError(msg)
