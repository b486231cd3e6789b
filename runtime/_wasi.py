"""The WASI preview1 context of one job: argv and env from wasmtime; stdin, capped in-memory
output and a virtual filesystem (runtime/_vfs.py) from host functions of our own.

Why our own host functions. wasmtime-py can capture stdout/stderr in memory only through
``stdout_custom``, a Python callback that wasmtime invokes from one of its tokio worker
threads: every guest write then crosses to another OS thread and back, and that thread must
take the GIL. Measured on hello.wasm that was ~70% of the job (~530 µs against ~160 µs
without output) and, with other Python threads busy, a GIL convoy. And wasmtime's own
filesystem is the host's: a preopen is a host directory, its timestamps, inode numbers and
readdir order are the host's, output lands on the node's disk with no quota. So the sandbox
shadows, in its one linker, every preview1 call that takes a descriptor (``fd_*``,
``path_*``, ``sock_*``) with the functions below. They run on the job's own thread and work
on the job's ``Fds`` (its descriptor table over its ``Vfs``), found through a thread-local
that ``serving`` sets: a store never leaves the thread that runs it, and host calls are
synchronous. The clocks and ``random_get`` are ours too, for the determinism profile
(``_clock``: virtual clocks and a seeded random stream, or the host's when the job asked
for ``determinism: off``). wasmtime still provides args, environ and proc_exit.

Descriptors: 0 reads the job's stdin bytes, 1 and 2 write into ``OutputCapture``s, 3 is the
preopened ``/`` (wasi-libc and Rust std resolve an absolute path against the preopen with
the longest matching prefix, so one ``/`` serves every path, and a relative one after
``chdir``). Stdio reports filetype "unknown" with only the read or write right, as wasmtime's
in-memory pipes do, so libc sees no terminal.

The functions are defined with wasmtime's unchecked C API (``private.define_unchecked``):
wasmtime-py's ``define_func`` wraps the caller and converts every value on every call (~10
µs a call), which a job reading its stdin in two calls would notice. Guest memory is read and
written through a memoryview over the memory's data (its address and size from the C API,
fetched per call: memory may move when it grows). Every pointer and
length the guest passes is checked against the memory's size before use (EFAULT), iovec
counts are capped at ``IOV_MAX`` (EINVAL) and paths at PATH_MAX (ENAMETOOLONG), so a hostile
guest cannot make the node read out of bounds or allocate beyond its quotas. A host function
never raises: wasmtime-py keeps a host exception in a process-wide global until the calling
thread re-raises it, which is not safe with several executors; an unexpected error is EIO.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import wasmtime

from plasm.runtime import _vfs as v
from plasm.runtime import _wasmtime_private as private
from plasm.runtime._clock import RANDOM_CALL_MAX, TICK_NS, VirtualWorld, host_now, host_random
from plasm.runtime._vfs import Directory, File, FsError, Handle
from plasm.runtime.job import MAX_PATH_BYTES, JobInput

# The errno names the fd_write tests know.
WASI_EBADF = v.EBADF
WASI_EFAULT = v.EFAULT
WASI_EFBIG = v.EFBIG
WASI_EINVAL = v.EINVAL
# POSIX writev's limit on iovecs per call; it also bounds the Python work one call can ask for.
IOV_MAX = 1024
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_IOVEC = struct.Struct("<II")
_U32_LE = struct.Struct("<I")
_U64_LE = struct.Struct("<Q")
_FDSTAT = struct.Struct("<BxH4xQQ")  # filetype, flags, rights base, rights inheriting
_FILESTAT = struct.Struct("<QQB7xQQQQQ")  # dev, ino, filetype, nlink, size, atim, mtim, ctim
_PRESTAT = struct.Struct("<B3xI")  # tag (0: dir), name length
_DIRENT = struct.Struct("<QQIB3x")  # d_next, d_ino, d_namlen, d_type
_OFLAG_CREAT, _OFLAG_DIRECTORY, _OFLAG_EXCL, _OFLAG_TRUNC = 1, 2, 4, 8
_FDFLAGS = 0x1F  # append, dsync, nonblock, rsync, sync
_FSTFLAGS = 0xF  # atim, atim_now, mtim, mtim_now
_ADVICE_MAX = 5

_from_memory = ctypes.pythonapi.PyMemoryView_FromMemory
_from_memory.restype = ctypes.py_object
_from_memory.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
_PYBUF_WRITE = 0x200


class OutputCapture:
    """Collects one output stream up to ``cap`` bytes.

    A write that fits is taken whole. A write that crosses the cap is taken up to the cap (a
    short write, as POSIX allows) and marks the stream truncated; any write after that fails
    in the guest with EFBIG. So the captured bytes are exactly the first ``cap`` bytes written.
    """

    __slots__ = ("cap", "data", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def write_spans(self, memory: memoryview, spans: list[tuple[int, int]]) -> int:
        """Take the bytes of ``(offset, length)`` spans of ``memory``, in order.

        Returns how many bytes were taken, or -1 when the stream is already full and the
        write asks for more (EFBIG). Never reads more than fits.
        """
        room = self.cap - len(self.data)
        total = sum(length for _, length in spans)
        if total > room:
            self.truncated = True
            if room <= 0:
                return -1
        taken = 0
        for offset, length in spans:
            n = min(length, room - taken)
            if n > 0:
                self.data += memory[offset : offset + n]
                taken += n
        return taken


_current = threading.local()


@contextmanager
def serving(fds: v.Fds, world: VirtualWorld | None = None) -> Iterator[None]:
    """Route this thread's guest descriptor calls to ``fds``, and its clock and random calls
    to ``world`` (None: the host's clocks and randomness)."""
    _current.fds = fds
    _current.world = world
    _current.memory = None
    try:
        yield
    finally:
        _current.fds = _current.memory = _current.world = None


def wasi_config(job_input: JobInput) -> wasmtime.WasiConfig:
    """A fresh WasiConfig for one job (it is consumed by ``Store.set_wasi``): argv and env.

    Its stdin, stdout and stderr are wasmtime's empty defaults, never reached: every call
    that takes a descriptor is ours.
    """
    config = wasmtime.WasiConfig()
    config.argv = [job_input.module_name, *job_input.args]
    if job_input.env:
        config.env = job_input.env
    return config


class _Guest:
    """The calling instance's memory, bounds-checked."""

    __slots__ = ("mem", "size")

    def __init__(self, caller: Any) -> None:
        handle = getattr(_current, "memory", None)  # looked up once per job (``serving``)
        if handle is None:
            handle = _current.memory = private.caller_memory_handle(caller)
            if handle is None:
                raise FsError(v.EFAULT)
        base, self.size = private.caller_memory(caller, handle)
        self.mem: memoryview = _from_memory(base, self.size, _PYBUF_WRITE)

    def check(self, ptr: int, length: int) -> int:
        ptr &= _U32
        if ptr + length > self.size:
            raise FsError(v.EFAULT)
        return ptr

    def read(self, ptr: int, length: int) -> bytes:
        ptr = self.check(ptr, length)
        return bytes(self.mem[ptr : ptr + length])

    def path(self, ptr: int, length: int) -> bytes:
        length &= _U32
        if length > MAX_PATH_BYTES:
            raise FsError(v.ENAMETOOLONG)
        return self.read(ptr, length)

    def put(self, ptr: int, data: bytes) -> None:
        ptr = self.check(ptr, len(data))
        self.mem[ptr : ptr + len(data)] = data

    def iovecs(self, ptr: int, count: int) -> list[tuple[int, int]]:
        count &= _U32
        if count > IOV_MAX:
            raise FsError(v.EINVAL)
        table = self.read(ptr, _IOVEC.size * count)
        spans = list(_IOVEC.iter_unpack(table))
        for offset, length in spans:
            if offset + length > self.size:
                raise FsError(v.EFAULT)
        return spans


def _fds() -> v.Fds:
    fds = getattr(_current, "fds", None)
    if fds is None:
        raise FsError(v.EBADF)
    return fds


HostFunc = Callable[..., int]
_HOST: dict[str, tuple[str, Callable[[Any, Any], int]]] = {}
_FIELD = {"i": "i32", "I": "i64"}


def _host(params: str) -> Callable[[HostFunc], HostFunc]:
    """Register a host function; ``params`` spells its wasm parameters, ``i`` i32, ``I`` i64
    (every result is one i32 errno). FsError becomes its errno, anything else EIO."""

    def register(fn: HostFunc) -> HostFunc:
        fields = tuple(enumerate(_FIELD[p] for p in params))

        def call(caller: Any, args: Any) -> int:
            try:
                return fn(caller, *[getattr(args[i], field) for i, field in fields])
            except FsError as error:
                return error.errno
            except Exception:
                return v.EIO

        _HOST[fn.__name__] = (params, call)
        return fn

    return register


def define_overrides(linker: wasmtime.Linker) -> None:
    """Shadow every WASI call that takes a descriptor, the clocks and ``random_get`` with ours
    (after ``define_wasi``, with shadowing on), through ``define_unchecked``: wasmtime-py's own
    host calls cost ~10 µs each in value conversions, which a job reading stdin in two calls
    would notice."""
    types = {"i": wasmtime.ValType.i32(), "I": wasmtime.ValType.i64()}
    for name, (params, call) in _HOST.items():
        ty = wasmtime.FuncType([types[p] for p in params], [types["i"]])
        private.define_unchecked(linker, "wasi_snapshot_preview1", name, ty, call)


# -- reading and writing ---------------------------------------------------------------------


def _readable(handle: Handle) -> File:
    if handle.kind == v.DIRECTORY:
        raise FsError(v.EISDIR)
    if handle.kind == v.CAPTURE or not handle.rights & v.RIGHT_FD_READ:
        raise FsError(v.EBADF)
    assert isinstance(handle.node, File)
    return handle.node


def _writable(handle: Handle) -> File:
    if handle.kind in (v.DIRECTORY, v.STDIN) or not handle.rights & v.RIGHT_FD_WRITE:
        raise FsError(v.EBADF)
    assert isinstance(handle.node, File)
    return handle.node


def _read_into(guest: _Guest, spans: list[tuple[int, int]], data: bytes | bytearray,
               pos: int) -> int:  # fmt: skip
    done = 0
    with memoryview(data) as source:
        for offset, length in spans:
            n = min(length, len(data) - pos - done)
            if n > 0:
                guest.mem[offset : offset + n] = source[pos + done : pos + done + n]
                done += n
            elif pos + done >= len(data):
                break  # end of file (an empty iovec before it is skipped)
    return done


def _write_from(guest: _Guest, spans: list[tuple[int, int]], file: File, pos: int) -> int:
    vfs = _fds().vfs
    data = file.data
    assert isinstance(data, bytearray)
    total = sum(length for _, length in spans)
    if total == 0:
        return 0
    end = vfs.room(file, pos, pos + total)
    old = len(data)
    if pos > old:
        data.extend(bytes(pos - old))  # a sparse write: the gap counts (room() allowed it)
    at = pos
    for offset, length in spans:
        n = min(length, end - at)
        if n > 0:
            data[at : at + n] = guest.mem[offset : offset + n]
            at += n
        elif at >= end:
            break  # a short write at the quota (an empty iovec before it is skipped)
    vfs.used_bytes += len(data) - old
    return at - pos


@_host("iiii")
def fd_read(caller: Any, fd: int, iovs: int, iovs_len: int, nread: int) -> int:
    handle = _fds().get(fd)
    file = _readable(handle)
    guest = _Guest(caller)
    spans = guest.iovecs(iovs, iovs_len)
    guest.check(nread, 4)
    done = _read_into(guest, spans, file.data, handle.pos)
    handle.pos += done
    guest.put(nread, _U32_LE.pack(done))
    return 0


@_host("iiiIi")
def fd_pread(caller: Any, fd: int, iovs: int, iovs_len: int, offset: int,
             nread: int) -> int:  # fmt: skip
    handle = _fds().get(fd)
    file = _readable(handle)
    if handle.kind != v.FILE:
        raise FsError(v.ESPIPE)
    guest = _Guest(caller)
    spans = guest.iovecs(iovs, iovs_len)
    guest.check(nread, 4)
    done = _read_into(guest, spans, file.data, v.check_offset(offset & _U64))
    guest.put(nread, _U32_LE.pack(done))
    return 0


@_host("iiii")
def fd_write(caller: Any, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
    handle = _fds().get(fd)
    if handle.kind == v.CAPTURE and handle.rights & v.RIGHT_FD_WRITE:
        guest = _Guest(caller)
        spans = guest.iovecs(iovs, iovs_len)
        guest.check(nwritten, 4)
        taken = handle.capture.write_spans(guest.mem, spans)
        if taken < 0:
            return v.EFBIG
    else:
        file = _writable(handle)
        guest = _Guest(caller)
        spans = guest.iovecs(iovs, iovs_len)
        guest.check(nwritten, 4)
        pos = len(file.data) if handle.flags & v.FDFLAG_APPEND else handle.pos
        taken = _write_from(guest, spans, file, pos)
        handle.pos = pos + taken
    guest.put(nwritten, _U32_LE.pack(taken))
    return 0


@_host("iiiIi")
def fd_pwrite(caller: Any, fd: int, iovs: int, iovs_len: int, offset: int,
              nwritten: int) -> int:  # fmt: skip
    handle = _fds().get(fd)
    if handle.kind != v.FILE:
        raise FsError(v.ESPIPE if handle.kind != v.DIRECTORY else v.EBADF)
    file = _writable(handle)
    guest = _Guest(caller)
    spans = guest.iovecs(iovs, iovs_len)
    guest.check(nwritten, 4)
    taken = _write_from(guest, spans, file, v.check_offset(offset & _U64))
    guest.put(nwritten, _U32_LE.pack(taken))
    return 0


def _seekable(handle: Handle) -> File:
    if handle.kind == v.DIRECTORY:
        raise FsError(v.EISDIR)
    if handle.kind != v.FILE:
        raise FsError(v.ESPIPE)
    assert isinstance(handle.node, File)
    return handle.node


@_host("iIii")
def fd_seek(caller: Any, fd: int, delta: int, whence: int, newoffset: int) -> int:
    handle = _fds().get(fd)
    file = _seekable(handle)
    guest = _Guest(caller)
    guest.check(newoffset, 8)
    delta &= _U64
    if delta >= 2**63:
        delta -= 2**64
    whence &= 0xFF
    if whence == 0:
        base = 0
    elif whence == 1:
        base = handle.pos
    elif whence == 2:
        base = len(file.data)
    else:
        raise FsError(v.EINVAL)
    handle.pos = v.check_offset(base + delta)
    guest.put(newoffset, _U64_LE.pack(handle.pos))
    return 0


@_host("ii")
def fd_tell(caller: Any, fd: int, offset: int) -> int:
    handle = _fds().get(fd)
    _seekable(handle)
    _Guest(caller).put(offset, _U64_LE.pack(handle.pos))
    return 0


# -- descriptors -----------------------------------------------------------------------------


@_host("i")
def fd_close(caller: Any, fd: int) -> int:
    _fds().close(fd)
    return 0


@_host("ii")
def fd_renumber(caller: Any, fd: int, to: int) -> int:
    _fds().renumber(fd, to)
    return 0


def _filetype(handle: Handle) -> int:
    if handle.kind == v.DIRECTORY:
        return v.FILETYPE_DIRECTORY
    return v.FILETYPE_REGULAR_FILE if handle.kind == v.FILE else v.FILETYPE_UNKNOWN


@_host("ii")
def fd_fdstat_get(caller: Any, fd: int, buf: int) -> int:
    handle = _fds().get(fd)
    stat = _FDSTAT.pack(_filetype(handle), handle.flags, handle.rights, handle.inheriting)
    _Guest(caller).put(buf, stat)
    return 0


@_host("ii")
def fd_fdstat_set_flags(caller: Any, fd: int, flags: int) -> int:
    handle = _fds().get(fd)
    flags &= 0xFFFF
    if flags & ~_FDFLAGS:
        raise FsError(v.EINVAL)
    handle.flags = flags
    return 0


@_host("iII")
def fd_fdstat_set_rights(caller: Any, fd: int, base: int, inheriting: int) -> int:
    handle = _fds().get(fd)
    base, inheriting = base & _U64, inheriting & _U64
    if base & ~handle.rights or inheriting & ~handle.inheriting:
        raise FsError(v.ENOTCAPABLE)
    handle.rights, handle.inheriting = base, inheriting
    return 0


def _filestat(node: File | Directory | None) -> bytes:
    if node is None:
        return _FILESTAT.pack(0, 0, v.FILETYPE_UNKNOWN, 0, 0, 0, 0, 0)
    size = len(node.data) if isinstance(node, File) else 0
    return _FILESTAT.pack(v.DEV, node.ino, v.filetype(node), 1, size, 0, 0, 0)


@_host("ii")
def fd_filestat_get(caller: Any, fd: int, buf: int) -> int:
    handle = _fds().get(fd)
    node = handle.node if handle.kind in (v.FILE, v.DIRECTORY) else None
    _Guest(caller).put(buf, _filestat(node))
    return 0


@_host("iI")
def fd_filestat_set_size(caller: Any, fd: int, size: int) -> int:
    handle = _fds().get(fd)
    file = _writable(handle)
    if handle.kind != v.FILE:
        raise FsError(v.EINVAL)
    _fds().vfs.resize(file, v.check_offset(size & _U64))
    return 0


def _settable_times(node: File | Directory | None, flags: int) -> None:
    flags &= 0xFFFF
    if flags & ~_FSTFLAGS or (flags & 3) == 3 or (flags & 12) == 12:
        raise FsError(v.EINVAL)
    if node is not None and not node.writable:
        raise FsError(v.EROFS)
    # Timestamps are always 0 (determinism): setting them succeeds and changes nothing.


@_host("iIIi")
def fd_filestat_set_times(caller: Any, fd: int, atim: int, mtim: int,
                          flags: int) -> int:  # fmt: skip
    handle = _fds().get(fd)
    _settable_times(handle.node if handle.kind != v.STDIN else None, flags)
    return 0


@_host("i")
def fd_sync(caller: Any, fd: int) -> int:
    _fds().get(fd)
    return 0


@_host("i")
def fd_datasync(caller: Any, fd: int) -> int:
    _fds().get(fd)
    return 0


@_host("iIIi")
def fd_advise(caller: Any, fd: int, offset: int, length: int, advice: int) -> int:
    handle = _fds().get(fd)
    if handle.kind in (v.STDIN, v.CAPTURE):
        raise FsError(v.ESPIPE)
    if advice & 0xFF > _ADVICE_MAX:
        raise FsError(v.EINVAL)
    return 0


@_host("iII")
def fd_allocate(caller: Any, fd: int, offset: int, length: int) -> int:
    handle = _fds().get(fd)
    file = _writable(handle)
    if handle.kind != v.FILE:
        raise FsError(v.ESPIPE)
    end = v.check_offset(offset & _U64) + (length & _U64)
    if end > 2**63 - 1:
        raise FsError(v.EFBIG)
    if end > len(file.data):
        _fds().vfs.resize(file, end)
    return 0


@_host("ii")
def fd_prestat_get(caller: Any, fd: int, buf: int) -> int:
    name = _fds().get(fd).preopen
    if name is None:
        raise FsError(v.EBADF)
    _Guest(caller).put(buf, _PRESTAT.pack(0, len(name)))
    return 0


@_host("iii")
def fd_prestat_dir_name(caller: Any, fd: int, path: int, path_len: int) -> int:
    name = _fds().get(fd).preopen
    if name is None:
        raise FsError(v.EBADF)
    if path_len & _U32 < len(name):
        raise FsError(v.ENAMETOOLONG)
    _Guest(caller).put(path, name)
    return 0


@_host("iiiIi")
def fd_readdir(caller: Any, fd: int, buf: int, buf_len: int, cookie: int,
               bufused: int) -> int:  # fmt: skip
    handle = _fds().get(fd)
    if handle.kind != v.DIRECTORY:
        raise FsError(v.ENOTDIR if handle.kind == v.FILE else v.EBADF)
    assert isinstance(handle.node, Directory)
    guest = _Guest(caller)
    buf_len &= _U32
    buf = guest.check(buf, buf_len)
    guest.check(bufused, 4)
    listing = handle.node.listing()
    out = bytearray()
    for index in range(min(cookie & _U64, len(listing)), len(listing)):
        if len(out) >= buf_len:
            break
        name, ino, kind = listing[index]
        out += _DIRENT.pack(index + 1, ino, len(name), kind)
        out += name
    used = min(len(out), buf_len)
    guest.mem[buf : buf + used] = out[:used]
    guest.put(bufused, _U32_LE.pack(used))
    return 0


# -- paths -----------------------------------------------------------------------------------


def _at(caller: Any, fd: int, path: int, path_len: int
        ) -> tuple[_Guest, v.Vfs, Directory, bytes]:  # fmt: skip
    fds = _fds()
    start = fds.directory(fd)
    guest = _Guest(caller)
    return guest, fds.vfs, start, guest.path(path, path_len)


@_host("iiiiiIIii")
def path_open(caller: Any, fd: int, dirflags: int, path: int, path_len: int,
              oflags: int, base: int, inheriting: int, fdflags: int,
              opened: int) -> int:  # fmt: skip
    guest, vfs, start, name_bytes = _at(caller, fd, path, path_len)
    fds = _fds()
    guest.check(opened, 4)
    oflags &= 0xFFFF
    fdflags &= 0xFFFF
    if oflags & ~0xF or fdflags & ~_FDFLAGS:
        raise FsError(v.EINVAL)
    if len(fds.table) >= v.MAX_FDS:
        raise FsError(v.EMFILE)
    base, inheriting = base & v.ALL_RIGHTS, inheriting & v.ALL_RIGHTS
    parent, name, slash = vfs.parent_of(start, name_bytes)
    node = parent if name is None else parent.entries.get(name)
    want_dir = bool(oflags & _OFLAG_DIRECTORY) or slash
    write = bool(base & v.RIGHT_FD_WRITE or oflags & _OFLAG_TRUNC)
    if node is None:
        if not oflags & _OFLAG_CREAT:
            raise FsError(v.ENOENT)
        if want_dir:
            raise FsError(v.EISDIR if slash else v.EINVAL)
        assert name is not None
        node = vfs.create_file(parent, name)
    elif oflags & _OFLAG_CREAT and oflags & _OFLAG_EXCL:
        raise FsError(v.EEXIST)
    if isinstance(node, Directory):
        if write:
            raise FsError(v.EISDIR)
        kind = v.DIRECTORY
    else:
        if want_dir:
            raise FsError(v.ENOTDIR)
        if write and not node.writable:
            raise FsError(v.EROFS)
        if oflags & _OFLAG_TRUNC:
            vfs.resize(node, 0)
        kind = v.FILE
    new = fds.add(Handle(kind, node, base, inheriting, fdflags))
    guest.put(opened, _U32_LE.pack(new))
    return 0


@_host("iii")
def path_create_directory(caller: Any, fd: int, path: int, path_len: int) -> int:
    _, vfs, start, name = _at(caller, fd, path, path_len)
    parent, last, _slash = vfs.parent_of(start, name)
    vfs.make_directory(parent, last)
    return 0


@_host("iiiii")
def path_filestat_get(caller: Any, fd: int, flags: int, path: int, path_len: int,
                      buf: int) -> int:  # fmt: skip
    guest, vfs, start, name = _at(caller, fd, path, path_len)
    guest.check(buf, _FILESTAT.size)
    guest.put(buf, _filestat(vfs.lookup(start, name)))
    return 0


@_host("iiiiIIi")
def path_filestat_set_times(caller: Any, fd: int, flags: int, path: int,
                            path_len: int, atim: int, mtim: int,
                            fst_flags: int) -> int:  # fmt: skip
    _, vfs, start, name = _at(caller, fd, path, path_len)
    _settable_times(vfs.lookup(start, name), fst_flags)
    return 0


@_host("iiiiiii")
def path_link(caller: Any, old_fd: int, old_flags: int, old_path: int,
              old_len: int, new_fd: int, new_path: int, new_len: int) -> int:  # fmt: skip
    _fds().directory(old_fd)
    _fds().directory(new_fd)
    return v.ENOTSUP  # no hard links


@_host("iiiiii")
def path_readlink(caller: Any, fd: int, path: int, path_len: int, buf: int,
                  buf_len: int, bufused: int) -> int:  # fmt: skip
    _, vfs, start, name = _at(caller, fd, path, path_len)
    vfs.lookup(start, name)  # ENOENT if absent
    return v.EINVAL  # it exists and, like everything here, is no symlink


@_host("iii")
def path_remove_directory(caller: Any, fd: int, path: int, path_len: int) -> int:
    _, vfs, start, name = _at(caller, fd, path, path_len)
    parent, last, _slash = vfs.parent_of(start, name)
    vfs.remove_directory(parent, last)
    return 0


@_host("iiiiii")
def path_rename(caller: Any, fd: int, old_path: int, old_len: int, new_fd: int,
                new_path: int, new_len: int) -> int:  # fmt: skip
    guest, vfs, old_start, old = _at(caller, fd, old_path, old_len)
    new_start = _fds().directory(new_fd)
    new = guest.path(new_path, new_len)
    old_dir, old_name, old_slash = vfs.parent_of(old_start, old)
    new_dir, new_name, new_slash = vfs.parent_of(new_start, new)
    moving = old_dir.entries.get(old_name) if old_name is not None else None
    if (old_slash or new_slash) and isinstance(moving, File):
        raise FsError(v.ENOTDIR)
    vfs.rename(old_dir, old_name, new_dir, new_name)
    return 0


@_host("iiiii")
def path_symlink(caller: Any, old_path: int, old_len: int, fd: int, new_path: int,
                 new_len: int) -> int:  # fmt: skip
    _fds().directory(fd)
    return v.ENOTSUP  # no symlinks


@_host("iii")
def path_unlink_file(caller: Any, fd: int, path: int, path_len: int) -> int:
    _, vfs, start, name = _at(caller, fd, path, path_len)
    parent, last, slash = vfs.parent_of(start, name)
    vfs.unlink(parent, last, slash)
    return 0


# -- sockets: there are none -----------------------------------------------------------------


def _not_a_socket(caller: Any, fd: int, *_: Any) -> int:
    _fds().get(fd)
    return v.ENOTSOCK


for _name, _params in (("sock_accept", "iii"), ("sock_recv", "iiiiii"),
                       ("sock_send", "iiiii"), ("sock_shutdown", "ii")):  # fmt: skip
    _not_a_socket.__name__ = _name
    _host(_params)(_not_a_socket)


# -- clocks and randomness (the determinism profile: _clock) ---------------------------------


def _world() -> VirtualWorld | None:
    return getattr(_current, "world", None)


@_host("iIi")
def clock_time_get(caller: Any, clock_id: int, _precision: int, out: int) -> int:
    world = _world()
    clock_id &= _U32
    reading = world.now(clock_id) if world is not None else host_now(clock_id)
    if reading is None:
        raise FsError(v.EINVAL)
    _Guest(caller).put(out, _U64_LE.pack(reading))
    return 0


@_host("ii")
def clock_res_get(caller: Any, clock_id: int, out: int) -> int:
    if host_now(clock_id & _U32) is None:
        raise FsError(v.EINVAL)
    _Guest(caller).put(out, _U64_LE.pack(TICK_NS if _world() is not None else 1))
    return 0


@_host("ii")
def random_get(caller: Any, buf: int, length: int) -> int:
    length &= _U32
    if length > RANDOM_CALL_MAX:
        raise FsError(v.EINVAL)
    guest = _Guest(caller)
    guest.check(buf, length)
    world = _world()
    guest.put(buf, world.random(length) if world is not None else host_random(length))
    return 0
