"""The command line's error boundary: the library's expected errors become one line and exit status 2;
anything else is a bug and keeps its traceback."""

import argparse
import contextlib
import errno
import os
import signal
import sys
from typing import NoReturn

from .._files import NO_SPACE, NoSpaceError

# What the library raises for bad arguments, files or folders: the user's to fix, not a bug.
EXPECTED = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def one_line(error: BaseException | str) -> str:
    """The message of `error` on one line (its class name when it has none)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or (type(error).__name__ if isinstance(error, BaseException) else "error")


def usage_error(prog: str, message: BaseException | str) -> NoReturn:
    """`PROG: error: MESSAGE` on stderr, one line, and exit status 2 (argparse's convention)."""
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    sys.exit(2)


def no_space(error: OSError) -> str:
    """A write outside `atomic_write` (an append, a folder) that found no room, in one line."""
    where = f" writing {error.filename}" if error.filename else ""
    limit = " (the file size limit, ulimit -f)" if error.errno == errno.EFBIG else ""
    return (
        f"{error.strerror}{limit}{where}; the files written before are intact. Free some space (or raise "
        "the limit) and run the command again."
    )


def installs_an_extra(error: ImportError) -> bool:
    """An ImportError of a missing optional dependency whose message says how to install it."""
    return "pip install" in str(error)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP outside the training loop (which takes them between chunks): stop like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


@contextlib.contextmanager
def _stop_signals():
    """SIGTERM (a scheduler's pre-emption) and SIGHUP (a closed terminal) act like Ctrl-C while a command runs:
    one line and exit status 128 + signal, not a silent death (`train` takes them at the end of a chunk and
    checkpoints it). Outside the main thread, nothing changes."""
    import threading

    wanted = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _stop) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_now(status: int) -> NoReturn:
    """Exit at once with `status`, the output flushed: after a stop signal a compiled computation (e.g. a large
    fixed-point search) may still run on XLA's threads, and tearing the interpreter down under it can crash
    (SIGSEGV); `os._exit` skips the teardown. (Every file is written atomically: nothing is left half done.)"""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command (`args.func`) inside the boundary: an expected error (`EXPECTED`, a full disk
    or file size limit (`NO_SPACE`), or an ImportError that says how to install what is missing) is one line
    and exit status 2; Ctrl-C, SIGTERM or SIGHUP is one line (what was kept, e.g. the checkpoint) and exit
    status 128 + signal (130, 143, 129); any other exception propagates with its traceback (exit status 1)."""
    try:
        with _stop_signals():
            return args.func(args)
    except KeyboardInterrupt as e:  # what was kept, in one line; 130 = 128 + SIGINT, 143 SIGTERM, 129 SIGHUP
        sys.stderr.write(f"{args.prog}: {one_line(e) if str(e) else 'interrupted'}\n")
        _exit_now(128 + int(getattr(e, "signum", signal.SIGINT)))
    except EXPECTED as e:
        usage_error(args.prog, e)
    except OSError as e:  # a full disk, a quota, the file size limit: one line; anything else is a bug
        if e.errno not in NO_SPACE:
            raise
        usage_error(args.prog, e if isinstance(e, NoSpaceError) else no_space(e))
    except ImportError as e:
        if not installs_an_extra(e):
            raise
        usage_error(args.prog, e)


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line (no usage block), exit status 2."""

    commands: dict[str, argparse.ArgumentParser]  # the top-level parser's subcommands by name (`_cli.parser`)

    def error(self, message):
        usage_error(self.prog, message)
