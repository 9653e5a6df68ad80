"""The command line's error boundary: the library's expected errors become one line and exit status 2;
anything else is a bug and keeps its traceback."""

import argparse
import errno
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
    return (f"{error.strerror}{limit}{where}; the files written before are intact. Free some space (or raise "
            "the limit) and run the command again.")


def installs_an_extra(error: ImportError) -> bool:
    """An ImportError of a missing optional dependency whose message says how to install it."""
    return "pip install" in str(error)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command (`args.func`) inside the boundary: an expected error (`EXPECTED`, a full disk
    or file size limit (`NO_SPACE`), or an ImportError that says how to install what is missing) is one line
    and exit status 2; Ctrl-C is one line
    (what was kept, e.g. the checkpoint) and exit status 130; any other exception propagates with its
    traceback (exit status 1)."""
    try:
        return args.func(args)
    except KeyboardInterrupt as e:  # Ctrl-C: what was kept, in one line; 130 = 128 + SIGINT
        sys.stderr.write(f"{args.prog}: {one_line(e) if str(e) else 'interrupted'}\n")
        sys.exit(130)
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

    def error(self, message):
        usage_error(self.prog, message)
