"""Drive the real plasm-console through a pseudo-terminal, as a person would.

`ConsoleTerminal` forks the console onto a pty (so readline, Ctrl-C and the
prompt behave as in a terminal), then `expect`s text in what it prints. Every
read is bounded by a timeout; escape sequences and carriage returns are removed
before matching. The terminal is fixed at 120x40 with TERM=dumb and NO_COLOR, so
rich's output is plain and predictable. The console is stopped by its PID.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon

PROMPT = "plasm> "
EXPECT_TIMEOUT_S = 15.0
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, colours, modes
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, links
    r"|\x1b[()][0-9A-Za-z]|\x1b[=>78]"  # charsets, keypad, save/restore
    r"|\r"
)


class ConsoleTerminal:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the console, nothing else
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [sys.executable, "-m", "plasm.console", *argv], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.raw = b""
        self.seen = 0  # how much of text() earlier expects consumed
        self.status: int | None = None

    def text(self) -> str:
        return _ESCAPES.sub("", self.raw.decode(errors="replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the console exited and closed the terminal
            chunk = b""
        self.raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = EXPECT_TIMEOUT_S) -> re.Match[str]:
        """Wait for `pattern` (a regex) in the output not yet consumed; consume up to it."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.text(), self.seen)
            if match:
                self.seen = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.2)):
                if match := re.compile(pattern).search(self.text(), self.seen):
                    self.seen = match.end()
                    return match
                raise AssertionError(
                    f"{pattern!r} did not appear within {timeout}s; the console printed:\n"
                    + self.text()[self.seen:])

    def expect_prompt(self, timeout: float = EXPECT_TIMEOUT_S) -> str:
        """Everything printed up to the next prompt (consumed)."""
        start = self.seen
        match = self.expect(re.escape(PROMPT), timeout)
        return self.text()[start:match.start()]

    def wait_until_reading_keys(self, timeout: float = EXPECT_TIMEOUT_S) -> None:
        """Wait until the console sleeps in readline's select() for the next key.

        CPython's readline notices a SIGINT only when it interrupts that select(): one
        that arrives while typed keys are being handled stays pending until Enter. No
        person types Ctrl-C within microseconds of a key, but a test does; so a test
        that presses Ctrl-C at the prompt first waits for this (Linux /proc).
        """
        deadline = time.monotonic() + timeout
        wchan = Path(f"/proc/{self.pid}/wchan")
        while time.monotonic() < deadline:
            where = wchan.read_text() if wchan.exists() else "select"
            if "select" in where or "poll" in where:
                return
            time.sleep(0.01)
        raise AssertionError(f"the console did not wait for a key within {timeout}s")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def command(self, line: str, timeout: float = EXPECT_TIMEOUT_S) -> str:
        """Type `line` and Enter; what the console printed before the next prompt."""
        self.send(line + "\n")
        self.expect(re.escape(line) + "\n", timeout)  # the echo of what we typed
        return self.expect_prompt(timeout)

    def wait_exit(self, timeout: float = EXPECT_TIMEOUT_S) -> int:
        """The console's exit status once it has exited on its own."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the console did not exit within {timeout}s:\n{self.text()}")
            self._read(0.05)
        return self.status

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -signal.SIGKILL
        os.close(self.fd)


ConsoleFactory = Callable[..., ConsoleTerminal]


@pytest.fixture
def console_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLASM_")}
    env.update(TERM="dumb", NO_COLOR="1", COLUMNS="120", LINES="40", HOME=str(tmp_path),
               PLASM_CONSOLE_HISTORY=str(tmp_path / "history"),
               PLASM_STRICT_MESSAGES="1")
    env.pop("XDG_STATE_HOME", None)
    return env


@pytest.fixture
def console_factory(console_env: dict[str, str], tmp_path: Path) -> Iterator[ConsoleFactory]:
    started: list[ConsoleTerminal] = []

    def start(*argv: str, cwd: Path | None = None) -> ConsoleTerminal:
        terminal = ConsoleTerminal(list(argv), console_env, cwd or tmp_path)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.close()


@pytest.fixture
def console(console_factory: ConsoleFactory, daemon: Daemon) -> ConsoleTerminal:
    """A console connected to a fresh daemon, at its first prompt."""
    terminal = console_factory("--socket", str(daemon.socket))
    terminal.expect("connected to plasmd")
    terminal.expect_prompt()
    return terminal
