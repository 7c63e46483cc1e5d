"""The file API (`put_file`, `get_file`), confined to the work dir: no symbolic link and no special file is followed.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.

The code in the sandbox owns /work and may plant anything there: a symbolic link to /proc/1/maps or to a descriptor
of the runner, a link to /dev/zero, a FIFO that blocks whoever opens it, a directory that is a link to /. So a path
is walked one component at a time from a descriptor of /work, each directory opened with O_NOFOLLOW|O_DIRECTORY
relative to the last (the walk of openat2's RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, written out so that it works on
every kernel), the file itself with O_NOFOLLOW|O_NONBLOCK (a FIFO opens at once instead of blocking) and accepted
only if fstat says it is a regular file. `..` is refused rather than resolved, absolute paths must be under /work,
and sizes are exact: a file of `max_bytes` is returned whole, one byte more is refused.
"""

import errno
import os
import stat

from runner_wire import WORK

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def split(path):
    """The components of `path` below /work; refuses what would leave it."""
    if not isinstance(path, str) or "\0" in path:
        raise OSError(errno.EINVAL, f"not a valid path: {path!r}")
    rel = path
    if path.startswith("/"):
        if path != WORK and not path.startswith(WORK + "/"):
            raise PermissionError(errno.EACCES, f"{path} is outside {WORK}; the file API reaches only {WORK}")
        rel = path[len(WORK) :]
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PermissionError(errno.EACCES, f"{path}: '..' is refused (the file API reaches only {WORK})")
    if not parts:
        raise IsADirectoryError(errno.EISDIR, f"{path} is the work directory, not a file")
    return parts


def _open_parent(parts, create):
    """A descriptor of the directory holding the last component, walked without following any link."""
    fd = os.open(WORK, _DIR_FLAGS)
    try:
        for i, name in enumerate(parts[:-1]):
            if create:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, "/".join(parts[: i + 1]), "a directory") from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refusal(exc, rel, what):
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return OSError(exc.errno, f"{WORK}/{rel} is not {what} (symbolic links are not followed)")
    return OSError(exc.errno, f"{WORK}/{rel}: {os.strerror(exc.errno)}")


def _open_file(parts, flags, create, mode=0o644):
    """(fd, absolute path) of a regular file; a link or a special file is refused without blocking."""
    parent = _open_parent(parts, create)
    rel = "/".join(parts)
    try:
        try:
            fd = os.open(parts[-1], flags | _FILE_FLAGS, mode, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise FileNotFoundError(errno.ENOENT, f"{WORK}/{rel}: no such file") from None
            raise _refusal(exc, rel, "a regular file") from None
    finally:
        os.close(parent)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a special file"
        raise OSError(
            errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
            f"{WORK}/{rel} is {kind}, not a regular file",
        )
    os.set_blocking(fd, True)
    return fd, f"{WORK}/{rel}", st


def op_put_file(req, channel):
    size = req["size"]
    try:
        parts = split(req.get("path"))
        if size > req.get("max_bytes", size):
            raise OSError(errno.EFBIG, f"{size} bytes are more than the {req['max_bytes']} bytes allowed")
        mode = int(req.get("mode", 0o644)) & 0o777
        fd, path, _ = _open_file(parts, os.O_WRONLY | os.O_CREAT, create=True, mode=mode)
    except OSError:
        channel.read_payload_to(size, lambda _: None)
        raise
    failure = []

    def sink(chunk):
        if failure:
            return
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            failure.append(exc)

    try:
        os.ftruncate(fd, 0)
        channel.read_payload_to(size, sink)
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return {"ok": True, "path": path, "bytes": size}, b""


def op_get_file(req):
    limit = int(req["max_bytes"])
    fd, path, st = _open_file(split(req.get("path")), os.O_RDONLY, create=False)
    try:
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"{path} is {st.st_size} bytes, more than the {limit} bytes allowed")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise OSError(errno.EFBIG, f"{path} is more than the {limit} bytes allowed")
    return {"ok": True, "path": path}, b"".join(chunks)
