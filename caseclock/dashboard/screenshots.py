"""Screenshots of every dashboard page from the demo data, for the README.

Run ``python -m caseclock.dashboard.screenshots --out docs/screenshots``. It starts
``caseclock up`` in a fresh temporary folder on free ports (Temporal dev server, worker, API
and dashboard, demo caseload), waits for the demo's escalations, signs in as demo people
with the development sign-in, acknowledges one alert with a note so the timeline shows
management oversight, takes a PNG of each page with Debian's Chromium, and stops it all.
Pass ``--url`` to photograph a dashboard that is already running with the demo instead.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import FloatRect, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY_SECONDS = 120
DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
WIDTH = 1280


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_engine(folder: Path) -> Iterator[str]:
    """``caseclock up`` with the demo in ``folder``; yields the dashboard's address."""
    api_port = _free_port()
    env = {
        **os.environ,
        "CASECLOCK_DEV_SERVER__DATA_DIR": str(folder / "var"),
        "CASECLOCK_DEV_SERVER__PORT": str(_free_port()),
        "CASECLOCK_DEV_SERVER__UI_PORT": str(_free_port()),
        "CASECLOCK_DATABASE__URL": f"sqlite+aiosqlite:///{folder}/var/caseclock.db",
        "CASECLOCK_API__PORT": str(api_port),
        "CASECLOCK_LOG_LEVEL": "WARNING",
    }
    log = folder / "up.log"
    with log.open("wb") as sink:
        up = subprocess.Popen(  # noqa: S603 (our own entry point)
            [sys.executable, "-m", "caseclock.cli", "up", "--definitions", str(DEFINITIONS)],
            env=env,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while "Caseclock is running" not in log.read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"caseclock up did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{api_port}"
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)


def sign_in(page: Page, base: str, staff_code: str) -> None:
    """Sign in with the development sign-in as a person in the demo directory."""
    page.context.clear_cookies()
    page.goto(f"{base}/sign-in")
    page.check(f"input[name=staff_code][value='{staff_code}']")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))


def _wait_for_alerts(page: Page, base: str) -> None:
    """Wait until the demo's escalations have reached a service manager's inbox."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        page.goto(f"{base}/inbox")
        if page.locator("#inbox-table tbody tr").count() >= 3:
            return
        time.sleep(2)
    raise RuntimeError("the demo's escalations did not arrive")


def shoot(base: str, out: Path) -> list[Path]:
    """Photograph each page; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})

        def save(name: str, full_page: bool = True, height: int | None = None) -> None:
            """Save the page (its top ``height`` pixels only, for the longest pages)."""
            path = out / name
            if height is None:
                page.screenshot(path=str(path), full_page=full_page)
            else:
                clip: FloatRect = {"x": 0, "y": 0, "width": WIDTH, "height": height}
                page.screenshot(path=str(path), full_page=True, clip=clip)
            written.append(path)

        page.goto(f"{base}/sign-in")
        save("sign-in.png", full_page=False)
        sign_in(page, base, "SM-ASSESS")
        _wait_for_alerts(page, base)
        page.goto(f"{base}/")
        save("my-work.png")
        page.goto(f"{base}/inbox")
        save("escalation-inbox.png")
        page.get_by_role("link", name=re.compile("Acknowledge or reassign.*DEMO-0003")).click()
        save("escalation.png")
        # A manager of the case's line acknowledges an alert, so the case shows oversight.
        sign_in(page, base, "SM-CPCIC")
        page.goto(f"{base}/inbox")
        page.get_by_role(
            "link", name=re.compile("Acknowledge or reassign.*DEMO-0004")
        ).first.click()
        page.fill(
            "#note",
            "Spoke to the conference chair: review booked for Monday. Visit done today; "
            "next visit diarised.",
        )
        page.get_by_role("button", name="Acknowledge").click()
        page.goto(f"{base}/cases/DEMO-0004")
        save("case-timeline.png", height=2000)
        oversight = out / "case-oversight.png"
        page.locator("section[aria-labelledby=oversight]").screenshot(path=str(oversight))
        written.append(oversight)
        sign_in(page, base, "DIR")
        page.goto(f"{base}/performance")
        save("performance.png", height=2300)
        browser.close()
    return written


def main() -> None:
    """Take the screenshots (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--url", help="a running dashboard with the demo data")
    args = parser.parse_args()
    if args.url:
        files = shoot(args.url.rstrip("/"), args.out)
    else:
        with tempfile.TemporaryDirectory() as folder, demo_engine(Path(folder)) as base:
            files = shoot(base, args.out)
    for path in files:
        print(path)


if __name__ == "__main__":
    main()
