"""One writer per folder: an advisory lock, and a marker of a write in progress.

Every command that writes a run, analysis or comparison folder or an output file takes `folder_lock` on the
folder first, before any work: `fcntl.flock` on `FOLDER/.ctrnn_jax.lock`, which records the holder's pid and
host. A second writer gets `FolderBusy` (a `FileExistsError`: one line and exit status 2 on the command line)
naming them. The OS releases the lock when its process dies (also by kill -9), so a dead holder never blocks
the next command. The lock is reentrant within a process (`flipflop` takes it once; `train_run`,
`Analysis.write`, ... take it again), and the lock file is removed on release.

A writer that replaces a set of files which only make sense together (an analysis: its figures, report and
`analysis.json`) wraps the writing in `writing(folder, files)`: a marker `FOLDER/.ctrnn_jax.incomplete`
listing them is written first and removed last. The next writer of the folder (`folder_lock`) finds the
marker of a killed process and removes the files it lists; a reader (`check_complete`) refuses the folder.

On network file systems `flock` is only as good as the server's locking: NFSv4 and recent Linux NFSv3 clients
emulate it with byte-range locks (it works between hosts), older clients lock only on the local host, and
some file systems (e.g. some FUSE mounts) ignore it.
"""

import contextlib
import json
import os
import socket
from pathlib import Path

from .._files import write_json
from ._outputs import _ours

LOCK, INCOMPLETE = ".ctrnn_jax.lock", ".ctrnn_jax.incomplete"

_held: dict[str, list] = {}  # resolved folder -> [fd, depth, created]


class FolderBusy(FileExistsError):
    """Another process holds the folder's lock (one line: who)."""


def _holder(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
        return f"pid {data['pid']} on host {data['host']} ({data.get('command', 'ctrnn-jax')})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its pid and host are not written yet)"


def _acquire(folder: Path, what: str) -> int:
    import fcntl

    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(
                f"{folder}: is being written by {_holder(path)}; one writer per folder: wait for "
                "it to finish, stop it, or choose another folder."
            ) from None
        try:  # the holder before us may have removed the file while we opened it: lock the file that is there
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": what}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, record + b"\n", 0)
    return fd


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "ctrnn_jax", *, log=None):
    """Hold the write lock of `folder` (made if missing, and removed again if it is left empty) while the block
    runs; reentrant within the process. `what`: the writer, as the lock file records it for a second writer's
    message (e.g. "ctrnn-jax train"). Raises `FolderBusy` naming the holder's pid and host.

    On taking it, a write that a killed process left unfinished (`writing`) is cleaned up: the files its
    marker lists are removed (`log` is told)."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key][1] += 1
        try:
            yield folder
        finally:
            _held[key][1] -= 1
        return
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: is a file, not a folder.")
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # made here, removed again if left empty
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _acquire(folder, what)
    except PermissionError:
        raise PermissionError(f"{folder}: cannot be written (no permission to make its lock file).") from None
    created = made
    _held[key] = [fd, 1, created]
    try:
        _recover(folder, log)
        yield folder
    finally:
        del _held[key]
        with contextlib.suppress(FileNotFoundError):
            (folder / LOCK).unlink()
        os.close(fd)
        for path in created:  # (only when empty: nothing was written)
            try:
                path.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def lock_outputs(*, folders=(), files=(), what: str = "ctrnn_jax", log=None):
    """`folder_lock` on every folder of `folders` and on the folder of every file of `files` (None skipped),
    each once; in a distributed run only process 0 (the one that writes) takes them."""
    from ..training._distributed import is_main_process

    wanted = [Path(f) for f in folders if f is not None] + [Path(f).parent for f in files if f is not None]
    keys = dict.fromkeys(os.path.realpath(f) for f in wanted)
    with contextlib.ExitStack() as stack:
        if is_main_process():
            for key in keys:
                folder = next(f for f in wanted if os.path.realpath(f) == key)
                stack.enter_context(folder_lock(folder, what, log=log))
        yield


def holds_lock(folder: str | os.PathLike) -> bool:
    """Whether this process holds the lock of `folder`."""
    return os.path.realpath(folder) in _held


def _inside(folder: Path, name) -> Path | None:
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    path = folder / name
    return path if os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep) else None


def _recover(folder: Path, log) -> list[Path]:
    """Remove the files listed by the marker of a killed writer (names inside `folder` only, and only files of the
    kinds we write, checked as `_outputs` does before any deletion), and the marker."""
    marker = folder / INCOMPLETE
    if not marker.is_file():
        return []
    try:
        data = json.loads(marker.read_text())
        names, dirs = list(data.get("files", [])), list(data.get("dirs", []))
    except (OSError, ValueError, TypeError, AttributeError):
        names, dirs, data = [], [], {}
    removed = []
    for name in names:
        path = _inside(folder, name)
        if path is not None and _ours(path):  # only a file of the kind we write under that name (never a link)
            path.unlink()
            removed.append(path)
    for name in dirs:  # figure folders: the PNG/PDF files we write there
        path = _inside(folder, name)
        if path is not None and path.is_dir() and not path.is_symlink():
            for p in [*path.glob("*.png"), *path.glob("*.pdf")]:
                if _ours(p):
                    p.unlink()
                    removed.append(p)
            with contextlib.suppress(OSError):
                path.rmdir()
    marker.unlink()
    if log is not None:
        who = f" (pid {data.get('pid')} on host {data.get('host')})" if isinstance(data, dict) and "pid" in data else ""
        log(f"{folder}: a write was stopped before it finished{who}; removed its {len(removed)} unfinished file(s)")
    return removed


@contextlib.contextmanager
def writing(folder: str | os.PathLike, files=(), dirs=()):
    """Mark `folder` as being written while the block runs: `files` (names relative to `folder`) and the
    figure files in `dirs` belong to a set that is only whole when the block ends. A process killed inside it
    leaves the marker; the next `folder_lock` removes what it lists, `check_complete` refuses the folder."""
    folder = Path(folder)
    write_json(
        folder / INCOMPLETE,
        {"pid": os.getpid(), "host": socket.gethostname(), "files": list(files), "dirs": list(dirs)},
    )
    yield
    (folder / INCOMPLETE).unlink(missing_ok=True)


def check_complete(folder: str | os.PathLike, what: str = "its results") -> None:
    """Raise `ValueError` when `folder` holds the marker of an unfinished write (`writing`) of another process
    that is not running now (its writer was killed)."""
    folder = Path(folder)
    if (folder / INCOMPLETE).is_file() and not holds_lock(folder):
        raise ValueError(
            f"{folder}: {what} are incomplete (being written, or their writer was stopped before "
            "it finished); write them again (e.g. ctrnn-jax analyze)."
        )
