"""Line editing for plasm-console: history file and tab completion (GNU readline).

Completion looks at the word under the cursor and the command at the start of
the line: the first word completes to a command name; after `run`/`verify` words
complete to files (for `run`: directories and `*.wasm`) or to the command's
options; after `job`/`receipt`/`cancel` they complete to job ids, the ones this
console saw first, then the daemon's recent ones (asked for at most every few
seconds, so a dead daemon never stalls the Tab key). Python's readline appends
nothing to a completed word, so a finished word carries its own space and a
directory its `/`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

HISTORY_LENGTH = 1000
JOB_LIST_REFRESH_S = 3.0


def history_path() -> Path:
    """$PLASM_CONSOLE_HISTORY, else $XDG_STATE_HOME/plasm/console_history (~/.local/state)."""
    if os.environ.get("PLASM_CONSOLE_HISTORY"):
        return Path(os.environ["PLASM_CONSOLE_HISTORY"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "plasm" / "console_history"


def complete_path(word: str, only_suffix: str | None = None) -> list[str]:
    """Files (then a space) and directories (then `/`) whose names start like `word`."""
    expanded = os.path.expanduser(word)
    folder, prefix = os.path.split(expanded)
    try:
        names = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    shown_folder = word[: len(word) - len(prefix)]
    matches = []
    for name in names:
        if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
            continue
        if os.path.isdir(os.path.join(folder or ".", name)):
            matches.append(shown_folder + name + "/")
        elif only_suffix is None or name.endswith(only_suffix):
            matches.append(shown_folder + name + " ")
    return matches


class Completer:
    """The readline completer: `complete(text, state)` as readline calls it."""

    def __init__(
        self,
        commands: Iterable[str],
        options: dict[str, list[str]],
        recent_job_ids: Callable[[], list[str]],
        daemon_job_ids: Callable[[], list[str]],
    ) -> None:
        self.commands = sorted(commands)
        self.options = options
        self.recent_job_ids = recent_job_ids
        self.daemon_job_ids = daemon_job_ids
        self._daemon_ids: list[str] = []
        self._daemon_ids_at = 0.0
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        import readline

        if state == 0:
            line = readline.get_line_buffer()
            self._matches = self.matches(line[: readline.get_begidx()], text)
        return self._matches[state] if state < len(self._matches) else None

    def matches(self, before: str, word: str) -> list[str]:
        """What `word` may complete to, given the text `before` it on the line."""
        words = before.split()
        if not words:
            return [c + " " for c in self.commands if c.startswith(word)]
        command = words[0]
        if word.startswith("-"):
            return [o + " " for o in self.options.get(command, []) if o.startswith(word)]
        if command == "run" and (len(words) == 1 or words[-1] == "--stdin-file"):
            return complete_path(word, only_suffix=".wasm" if len(words) == 1 else None)
        if command == "verify":
            return complete_path(word)
        if command in ("job", "receipt", "cancel") and len(words) == 1:
            return [i + " " for i in self._job_ids() if i.startswith(word)]
        return []

    def _job_ids(self) -> list[str]:
        if time.monotonic() - self._daemon_ids_at > JOB_LIST_REFRESH_S:
            self._daemon_ids_at = time.monotonic()
            try:
                self._daemon_ids = self.daemon_job_ids()
            except Exception:  # completion must never raise into readline
                self._daemon_ids = []
        seen = self.recent_job_ids()
        return seen + [i for i in self._daemon_ids if i not in seen]


class LineEditor:
    """readline set up for the console: history loaded now, saved by `save()`."""

    def __init__(self, completer: Completer, history: Path | None = None) -> None:
        import readline

        self.history = history or history_path()
        readline.set_completer(completer.complete)
        readline.set_completer_delims(" \t\n")
        readline.parse_and_bind("tab: complete")
        readline.set_history_length(HISTORY_LENGTH)
        with contextlib.suppress(OSError):  # no history yet, or unreadable: start empty
            readline.read_history_file(self.history)

    def save(self) -> str | None:
        """Write the history file; the reason when it could not be written."""
        import readline

        try:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(self.history)
            os.chmod(self.history, 0o600)
        except OSError as exc:
            return f"could not save the history to {self.history}: {exc.strerror}"
        return None
