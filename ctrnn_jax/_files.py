"""Files written whole or not at all: atomic writes, JSON, and checked `.npz` reading.

Every layer that writes a file uses these, so nothing on disk is ever half written.
"""

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import socket
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

_TMP_SUFFIX = ".tmp"
_STALE_SECONDS = 3600.0  # a temporary file of another host is stale after this long (its writer is gone)


def _temp_tag() -> str:
    """`<host>-<pid>`: who wrote a temporary file, so that a later start can tell a dead writer's file."""
    return f"{socket.gethostname().replace('.', '_').replace('-', '_')}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files that `atomic_write` left in `folder` when its process was killed
    (`.NAME.<host>-<pid>.XXXXXXXX.tmp`; only those of `NAME` when `name` is given).

    A file is stale when its process is gone (same host), or, from another host, when it is older than an
    hour; a live writer's file is kept. Returns the removed paths. A missing folder is fine.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed, host = [], _temp_tag().rsplit("-", 1)[0]
    pattern = f".{glob.escape(name)}.*{_TMP_SUFFIX}" if name else f".*{_TMP_SUFFIX}"
    for tmp in folder.glob(pattern):
        match = re.fullmatch(r"\.(?P<name>.+)\.(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.tmp", tmp.name)
        if match is None or not tmp.is_file():
            continue  # not one of ours
        same_host = match["host"] == host
        try:
            stale = (not _alive(int(match["pid"]))) if same_host else time.time() - tmp.stat().st_mtime > _STALE_SECONDS
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except (FileNotFoundError, PermissionError):
            continue
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file next to `path`; on success rename it onto `path` (never a partial file).

    The temporary file is `.NAME.<host>-<pid>.XXXXXXXX.tmp`: removed on any exception, and, when its
    process was killed (`kill -9`), by the next write of `NAME` or `clean_temporaries` of the folder."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; a file of that name cannot be written.")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_temp_tag()}.", suffix=_TMP_SUFFIX)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        written = 0
        with contextlib.suppress(OSError):
            written = os.stat(tmp).st_size
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in NO_SPACE:
            raise NoSpaceError(e.errno, no_space_message(e.errno, path, written)) from None
        raise


# A write that found no room: a full disk, a full quota, a file over the size limit (`ulimit -f`; with
# SIGXFSZ ignored, as the command line does, such a write fails with EFBIG instead of killing the process).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class NoSpaceError(OSError):
    """`atomic_write` found no room for a file (`NO_SPACE`); its message names the folder, the file and the
    space needed, and says that the previous file of that name is intact (nothing was replaced)."""

    def __str__(self) -> str:
        assert self.strerror is not None  # always given (`atomic_write`)
        return self.strerror


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def no_space_message(code: int, path: Path, written: int) -> str:
    """One line: why `path` could not be written (`written` bytes went in before the write failed), how much
    it needs at least (that, or the size of the file it was to replace), and what is left as it was."""
    previous = path.stat().st_size if path.is_file() else 0
    needed = max(written + 1, previous)
    kept = f"the previous {path.name} is intact" if previous else f"no {path.name} was written"
    if code == errno.EFBIG:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        shown = "unlimited" if limit == resource.RLIM_INFINITY else _size(limit)
        why = f"the file size limit (ulimit -f: {shown}) is too small for {path.name} (at least {_size(needed)})"
    else:
        try:
            free = f", {_size(shutil.disk_usage(path.parent).free)} free"
        except OSError:
            free = ""
        full = "disk quota exceeded" if code == errno.EDQUOT else "no space left on the device"
        why = f"{full} to write {path.name} (at least {_size(needed)} needed{free})"
    return f"{path.parent}: {why}; {kept}. Free some space (or raise the limit) and run the command again."


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def jsonable(obj):
    """`obj` in plain JSON types: NumPy arrays as nested lists, NumPy scalars as numbers, dict keys as strings,
    tuples as lists, non-finite floats as `None`."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def read_npz(path: Path, required: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` file (no pickles), checking that `required` names are present.

    Raises `FileNotFoundError`, or `ValueError` naming the file and the problem.
    """
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, not an .npz file.")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not an .npz file (an .npz is a zip archive of NumPy arrays, as "
            f"numpy.savez writes it; this file is not a zip archive)."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e}).") from None
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"{path}: missing array(s) {', '.join(missing)}; {what} needs {', '.join(required)}.")
    return data
