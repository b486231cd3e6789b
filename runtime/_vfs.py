"""The virtual, deterministic, in-memory filesystem of one job, and its descriptor table.

Theory of operation: a ``Vfs`` is a tree of ``Directory`` and ``File`` nodes built from the
job's input files (``JobInput.files``) plus an empty, writable ``/output``. Nothing of the
host's filesystem is ever reachable: there is no host path anywhere in here. The input files
and every directory above them (``/`` itself, ``/input`` ...) are read-only (EROFS);
``/output`` and what the guest makes below it are writable. ``/input`` and ``/output`` always
exist, so a job without files sees the same two empty directories everywhere.

Determinism: every timestamp is 0, ``dev`` is ``DEV``, inode numbers count up in creation
order (the root is 1, then the input tree in sorted path order, then ``/output``, then what
the guest makes, in the order it makes it), ``readdir`` lists ``.``, ``..`` and then the
entries sorted by name (bytes), and new descriptors take the lowest free number. So the same
job gives the same bytes and the same stat results on every node.

Paths (bytes, as the guest passes them) resolve from a directory: empty and ``.``
components are skipped, ``..`` goes to the parent and stays at ``/`` on ``/`` (as POSIX's
``/..``), a leading ``/`` starts at the root. There are no symlinks.

Quotas (``Limits``), enforced when a file grows (write, sparse write past the end,
``set_size``, ``allocate``) and before any byte is allocated: the bytes of one file
(``max_output_file_bytes``: EFBIG), the bytes of all output files, unlinked ones still open
included (``max_output_files_bytes``: EDQUOT), how many files and directories ``/output``
holds (``max_output_files``: ENOSPC). A write that crosses a quota is short (it takes what
fits), the next one fails. Every refusal sets ``Vfs.truncated`` (``Outcome.outputs_truncated``).

``Fds`` is the descriptor table: 0 stdin (the job's stdin bytes), 1 and 2 the output
captures, 3 the preopened ``/``. The WASI host functions (``_wasi``) drive both.
Errors are ``FsError(errno)`` with wasi_snapshot_preview1 errno values.
"""

from __future__ import annotations

from collections.abc import Iterator

from plasm.runtime.job import MAX_NAME_BYTES, MAX_PATH_BYTES, OUTPUT_DIR, Limits

# wasi_snapshot_preview1 errno values (wasi/api.h `__wasi_errno_t`), not the host's.
EACCES = 2
EBADF = 8
EDQUOT = 19
EEXIST = 20
EFAULT = 21
EFBIG = 22
EILSEQ = 25
EINVAL = 28
EIO = 29
EISDIR = 31
EMFILE = 33
ENAMETOOLONG = 37
ENOENT = 44
ENOSPC = 51
ENOTDIR = 54
ENOTEMPTY = 55
ENOTSOCK = 57
ENOTSUP = 58
EOVERFLOW = 61
EROFS = 69
ESPIPE = 70
ENOTCAPABLE = 76

# wasi filetype
FILETYPE_UNKNOWN = 0
FILETYPE_DIRECTORY = 3
FILETYPE_REGULAR_FILE = 4

DEV = 1
MAX_FDS = 1024
_MAX_OFFSET = 2**63 - 1


class FsError(Exception):
    """A WASI call fails with ``errno`` (a wasi_snapshot_preview1 errno value)."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


class File:
    """A regular file: ``data`` is ``bytes`` (an input, read-only) or a ``bytearray``."""

    __slots__ = ("data", "ino", "linked", "opens", "writable")

    def __init__(self, ino: int, data: bytes | bytearray, writable: bool) -> None:
        self.ino = ino
        self.data = data
        self.writable = writable
        self.linked = True
        self.opens = 0


class Directory:
    __slots__ = ("entries", "ino", "name", "parent", "removed", "writable")

    def __init__(self, ino: int, name: bytes, parent: Directory | None, writable: bool) -> None:
        self.ino = ino
        self.name = name
        self.parent = parent if parent is not None else self
        self.writable = writable
        self.entries: dict[bytes, File | Directory] = {}
        self.removed = False

    def listing(self) -> list[tuple[bytes, int, int]]:
        """``(name, ino, filetype)`` of ``.``, ``..`` and the entries sorted by name."""
        found = [(b".", self.ino, FILETYPE_DIRECTORY), (b"..", self.parent.ino, FILETYPE_DIRECTORY)]
        for name in sorted(self.entries):
            node = self.entries[name]
            found.append((name, node.ino, filetype(node)))
        return found


Node = File | Directory


def filetype(node: Node) -> int:
    return FILETYPE_DIRECTORY if isinstance(node, Directory) else FILETYPE_REGULAR_FILE


def _path_bytes(directory: Directory) -> int:
    """Length of the absolute path of ``directory`` (0 for the root)."""
    length = 0
    while directory.parent is not directory:
        length += 1 + len(directory.name)
        directory = directory.parent
    return length


def _is_within(directory: Directory, ancestor: Directory) -> bool:
    while True:
        if directory is ancestor:
            return True
        if directory.parent is directory:
            return False
        directory = directory.parent


class Vfs:
    """The tree of one job; see the module docstring."""

    def __init__(self, files: tuple[tuple[str, bytes], ...], limits: Limits) -> None:
        self._next_ino = 1
        self.max_file = limits.max_output_file_bytes
        self.max_total = limits.max_output_files_bytes
        self.max_entries = limits.max_output_files
        self.used_bytes = 0
        self.used_entries = 0
        self.truncated = False
        self.root = Directory(self._ino(), b"", None, writable=False)
        self.mkdirs(b"/input")
        for path, data in files:  # JobInput keeps them validated and sorted
            parent, _, name = path.encode().rpartition(b"/")
            directory = self.mkdirs(parent)
            directory.entries[name] = File(self._ino(), data, writable=False)
        self.output = Directory(self._ino(), OUTPUT_DIR[1:].encode(), self.root, writable=True)
        self.root.entries[self.output.name] = self.output

    def _ino(self) -> int:
        ino = self._next_ino
        self._next_ino += 1
        return ino

    def mkdirs(self, path: bytes) -> Directory:
        """The read-only directory at absolute ``path``, made with its parents if missing."""
        directory = self.root
        for part in path.split(b"/"):
            if part:
                found = directory.entries.get(part)
                if found is None:
                    found = Directory(self._ino(), part, directory, writable=False)
                    directory.entries[part] = found
                assert isinstance(found, Directory)  # JobInput refuses a file above a file
                directory = found
        return directory

    # -- paths -------------------------------------------------------------------------------

    def parent_of(self, start: Directory, path: bytes) -> tuple[Directory, bytes | None, bool]:
        """``(directory, last name, trailing slash)`` of ``path`` from ``start``; the name is
        None when the path ends in the directory itself (``.``, ``..``, ``/``)."""
        if not path:
            raise FsError(ENOENT)
        if len(path) > MAX_PATH_BYTES:
            raise FsError(ENAMETOOLONG)
        if b"\x00" in path:
            raise FsError(EINVAL)
        directory = self.root if path.startswith(b"/") else start
        stripped = path.rstrip(b"/")
        slash = len(stripped) != len(path)
        parts = stripped.split(b"/")
        last = parts.pop()
        for part in parts:
            directory = self._step(directory, part)
        if last in (b"", b".", b".."):
            return self._step(directory, last), None, slash
        if len(last) > MAX_NAME_BYTES:
            raise FsError(ENAMETOOLONG)
        return directory, last, slash

    def _step(self, directory: Directory, part: bytes) -> Directory:
        if part in (b"", b"."):
            return directory
        if part == b"..":
            return directory.parent
        if len(part) > MAX_NAME_BYTES:
            raise FsError(ENAMETOOLONG)
        found = directory.entries.get(part)
        if found is None:
            raise FsError(ENOENT)
        if not isinstance(found, Directory):
            raise FsError(ENOTDIR)
        return found

    def lookup(self, start: Directory, path: bytes) -> Node:
        directory, name, slash = self.parent_of(start, path)
        if name is None:
            return directory
        node = directory.entries.get(name)
        if node is None:
            raise FsError(ENOENT)
        if slash and not isinstance(node, Directory):
            raise FsError(ENOTDIR)
        return node

    # -- changing the tree -------------------------------------------------------------------

    def _may_add(self, directory: Directory, name: bytes) -> None:
        if not directory.writable:
            raise FsError(EROFS)
        if directory.removed:
            raise FsError(ENOENT)
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            raise FsError(EILSEQ) from None  # output paths are text (Outcome.output_files)
        if _path_bytes(directory) + 1 + len(name) > MAX_PATH_BYTES:
            raise FsError(ENAMETOOLONG)
        if self.used_entries >= self.max_entries:
            self.truncated = True
            raise FsError(ENOSPC)

    def create_file(self, directory: Directory, name: bytes) -> File:
        self._may_add(directory, name)
        file = File(self._ino(), bytearray(), writable=True)
        directory.entries[name] = file
        self.used_entries += 1
        return file

    def make_directory(self, directory: Directory, name: bytes | None) -> None:
        if name is None or name in directory.entries:
            raise FsError(EEXIST)
        self._may_add(directory, name)
        directory.entries[name] = Directory(self._ino(), name, directory, writable=True)
        self.used_entries += 1

    def unlink(self, directory: Directory, name: bytes | None, slash: bool) -> None:
        node = self._existing(directory, name)
        if isinstance(node, Directory):
            raise FsError(EISDIR)
        if slash:
            raise FsError(ENOTDIR)
        self._detach(directory, name)  # type: ignore[arg-type]

    def remove_directory(self, directory: Directory, name: bytes | None) -> None:
        if name is None:
            raise FsError(EINVAL if directory.writable else EROFS)
        node = self._existing(directory, name)
        if not isinstance(node, Directory):
            raise FsError(ENOTDIR)
        if node.entries:
            raise FsError(ENOTEMPTY)
        self._detach(directory, name)

    def _existing(self, directory: Directory, name: bytes | None) -> Node:
        if name is None:
            raise FsError(EISDIR)
        node = directory.entries.get(name)
        if node is None:
            raise FsError(ENOENT)
        if not directory.writable:
            raise FsError(EROFS)
        return node

    def _detach(self, directory: Directory, name: bytes) -> None:
        node = directory.entries.pop(name)
        self.used_entries -= 1
        if isinstance(node, Directory):
            node.removed = True
        else:
            node.linked = False
            if not node.opens:
                self.release(node)

    def release(self, file: File) -> None:
        """Forget the bytes of an unlinked file nobody has open any more."""
        if file.writable:
            self.used_bytes -= len(file.data)
            file.data = b""

    def rename(
        self, old_dir: Directory, old: bytes | None, new_dir: Directory, new: bytes | None
    ) -> None:
        if old is None or new is None:
            raise FsError(EINVAL if old_dir.writable and new_dir.writable else EROFS)
        node = old_dir.entries.get(old)
        if node is None:
            raise FsError(ENOENT)
        if not old_dir.writable or not new_dir.writable:
            raise FsError(EROFS)
        target = new_dir.entries.get(new)
        if target is node:
            return
        if isinstance(node, Directory):
            if _is_within(new_dir, node):
                raise FsError(EINVAL)
            if isinstance(target, File):
                raise FsError(ENOTDIR)
            if isinstance(target, Directory) and target.entries:
                raise FsError(ENOTEMPTY)
        elif isinstance(target, Directory):
            raise FsError(EISDIR)
        try:
            new.decode("utf-8")
        except UnicodeDecodeError:
            raise FsError(EILSEQ) from None
        deepest = _deepest_below(node) if isinstance(node, Directory) else 0
        if _path_bytes(new_dir) + 1 + len(new) + deepest > MAX_PATH_BYTES:
            raise FsError(ENAMETOOLONG)
        if target is not None:
            self._detach(new_dir, new)
        del old_dir.entries[old]
        new_dir.entries[new] = node
        if isinstance(node, Directory):
            node.parent, node.name = new_dir, new

    # -- growing files -----------------------------------------------------------------------

    def room(self, file: File, pos: int, end: int) -> int:
        """How far (up to ``end``) a write from ``pos`` may make ``file`` reach now, counting
        any gap past its end. Raises EFBIG (the per-file quota) or EDQUOT (the total) when
        not one byte fits; marks the job truncated whenever it falls short."""
        size = len(file.data)
        if end <= size:
            return end
        total_room = size + self.max_total - self.used_bytes
        limit = min(self.max_file, total_room)
        if limit < end:
            self.truncated = True
            if limit <= pos:
                raise FsError(EFBIG if self.max_file <= total_room else EDQUOT)
        return min(end, limit)

    def resize(self, file: File, size: int) -> None:
        """Make ``file`` exactly ``size`` bytes (zeros past its end), within the quotas."""
        data = file.data
        assert isinstance(data, bytearray)
        old = len(data)
        if size > old:
            if size > self.max_file:
                self.truncated = True
                raise FsError(EFBIG)
            if self.used_bytes + size - old > self.max_total:
                self.truncated = True
                raise FsError(EDQUOT)
            data.extend(bytes(size - old))
        else:
            del data[size:]
        self.used_bytes += size - old

    # -- the result --------------------------------------------------------------------------

    def output_files(self) -> tuple[tuple[str, bytes], ...]:
        """Every regular file under /output as ``(path, bytes)``, sorted by path."""
        found = [(path, bytes(file.data)) for path, file in _files_below(self.output, OUTPUT_DIR)]
        found.sort()
        return tuple(found)


def _files_below(top: Directory, prefix: str) -> Iterator[tuple[str, File]]:
    stack = [(top, prefix)]
    while stack:
        directory, path = stack.pop()
        for name, node in directory.entries.items():
            child = f"{path}/{name.decode()}"
            if isinstance(node, Directory):
                stack.append((node, child))
            else:
                yield child, node


def _deepest_below(top: Directory) -> int:
    """The longest path below ``top``, relative to it (bytes, with its leading '/')."""
    deepest = 0
    stack = [(top, 0)]
    while stack:
        directory, length = stack.pop()
        deepest = max(deepest, length)
        for name, node in directory.entries.items():
            if isinstance(node, Directory):
                stack.append((node, length + 1 + len(name)))
            else:
                deepest = max(deepest, length + 1 + len(name))
    return deepest


# -- descriptors -----------------------------------------------------------------------------

# wasi rights bits (wasi/api.h __WASI_RIGHTS_*)
RIGHT_FD_READ = 1 << 1
RIGHT_FD_SEEK = 1 << 2
RIGHT_FD_TELL = 1 << 5
RIGHT_FD_WRITE = 1 << 6
RIGHT_FD_READDIR = 1 << 14
ALL_RIGHTS = (1 << 30) - 1
FDFLAG_APPEND = 1

STDIN, CAPTURE, FILE, DIRECTORY = range(4)


class Handle:
    """One open descriptor. ``kind``: STDIN (``node`` a read-only File of the stdin bytes),
    CAPTURE (``capture`` an OutputCapture), FILE or DIRECTORY."""

    __slots__ = ("capture", "flags", "inheriting", "kind", "node", "pos", "preopen", "rights")

    def __init__(
        self,
        kind: int,
        node: Node | None,
        rights: int,
        inheriting: int = 0,
        flags: int = 0,
        capture: object = None,
    ) -> None:
        self.kind = kind
        self.node = node
        self.rights = rights
        self.inheriting = inheriting
        self.flags = flags
        self.capture = capture
        self.pos = 0
        self.preopen: bytes | None = None


class Fds:
    """The descriptor table of one job over its Vfs (made on first use: a job that touches
    no file pays for three handles only)."""

    __slots__ = ("_files", "_limits", "_vfs", "table")

    def __init__(
        self, stdin: bytes, stdout: object, stderr: object,
        files: tuple[tuple[str, bytes], ...], limits: Limits,
    ) -> None:  # fmt: skip
        self._files = files
        self._limits = limits
        self._vfs: Vfs | None = None
        self.table: dict[int, Handle] = {
            0: Handle(STDIN, File(0, stdin, writable=False), RIGHT_FD_READ),
            1: Handle(CAPTURE, None, RIGHT_FD_WRITE, capture=stdout),
            2: Handle(CAPTURE, None, RIGHT_FD_WRITE, capture=stderr),
        }
        root = Handle(DIRECTORY, None, ALL_RIGHTS, ALL_RIGHTS)
        root.preopen = b"/"
        self.table[3] = root

    @property
    def vfs(self) -> Vfs:
        if self._vfs is None:
            self._vfs = Vfs(self._files, self._limits)
            for handle in self.table.values():
                if handle.preopen is not None and handle.node is None:
                    handle.node = self._vfs.root
        return self._vfs

    def get(self, fd: int) -> Handle:
        handle = self.table.get(fd)
        if handle is None:
            raise FsError(EBADF)
        if handle.kind == DIRECTORY and handle.node is None:
            handle.node = self.vfs.root  # the preopen, before the tree was made
        return handle

    def directory(self, fd: int) -> Directory:
        node = self.get(fd).node
        if not isinstance(node, Directory):
            raise FsError(ENOTDIR)
        return node

    def add(self, handle: Handle) -> int:
        if len(self.table) >= MAX_FDS:
            raise FsError(EMFILE)
        fd = 0
        while fd in self.table:
            fd += 1
        if isinstance(handle.node, File):
            handle.node.opens += 1
        self.table[fd] = handle
        return fd

    def close(self, fd: int) -> None:
        handle = self.table.pop(fd, None)
        if handle is None:
            raise FsError(EBADF)
        node = handle.node
        if handle.kind == FILE and isinstance(node, File):
            node.opens -= 1
            if not node.opens and not node.linked:
                self.vfs.release(node)

    def renumber(self, fd: int, to: int) -> None:
        handle = self.get(fd)
        self.get(to)
        if fd == to:
            return
        self.close(to)
        self.table[to] = handle
        del self.table[fd]

    def output_files(self) -> tuple[tuple[str, bytes], ...]:
        return () if self._vfs is None else self._vfs.output_files()

    @property
    def truncated(self) -> bool:
        return self._vfs is not None and self._vfs.truncated


def check_offset(offset: int) -> int:
    if not 0 <= offset <= _MAX_OFFSET:
        raise FsError(EINVAL)
    return offset

