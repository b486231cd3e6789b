"""One daemon per state dir: an exclusive flock on ``<state dir>/plasmd.lock``.

`plasmd run` takes the lock before it opens the key or the journal and holds it for its
whole life. The lock lives on an open file descriptor, so the kernel drops it when the
process ends however it ends (SIGKILL included): a lock file left behind is harmless, the
next daemon simply locks it again. The file holds the holder's PID, only so that the
refusal can name it. `plasmd execute-job` and `plasmd id` do not take it: they only read
the key, keep no journal, and write the module cache by atomic rename.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from plasm.errors import PlasmError

LOCK_FILE_NAME = "plasmd.lock"


class StateDirInUse(PlasmError):
    """Another live plasmd holds this state dir's lock."""


class StateDirLockError(PlasmError):
    """The state dir or its lock file cannot be made or opened."""


def hold_state_dir(state_dir: Path) -> int:
    """Make ``state_dir`` if needed and lock it; the locked fd, to keep open until exit."""
    from plasm.keystore import ensure_state_dir

    ensure_state_dir(state_dir)
    path = state_dir / LOCK_FILE_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise StateDirLockError(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        who = f"plasmd pid {holder}" if holder.isdigit() else "another plasmd"
        raise StateDirInUse(
            f"state dir {state_dir} is in use by {who}; stop it or use another --state-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
