"""The `ctrnn-jax` command line: `train`, `flipflop` (the main job), `evaluate`, `fixed-points`,
`analyze`, `compare`, `import-keras`.

One module per command (`_train` holds `train` and `flipflop`), each adding its parser and its function
(`set_defaults(func=...)`). Options of config dataclasses are generated from their fields and docstrings
(`_options`). Compiled programs are cached on disk between runs (`_cache`). Errors: `main` is the one
boundary (`_errors.run_command`): the library's expected errors (bad values, missing files, a missing
optional extra) are one line on stderr and exit status 2; any other exception is a bug and keeps its
traceback. `--distributed` and friends: `_distributed`.
"""

import signal

from . import _analyze, _compare, _evaluate, _fixed_points, _import_keras, _train
from ._cache import use_compile_cache
from ._distributed import COMMANDS as DISTRIBUTED_COMMANDS
from ._distributed import add_options as _add_distributed_options
from ._distributed import check_devices, use_cpu_cores
from ._distributed import run as _run_distributed
from ._distributed import start as _start_distributed
from ._errors import Parser, run_command
from ._options import ConfigOptions, field_help, parse_fields
from ._tasks import TASK_NAMES
from ._train import PRESETS, add_config_options, config_from_args


def build_parser() -> Parser:
    """The `ctrnn-jax` parser; its `commands` attribute maps each command's name to its parser."""
    parser = Parser(prog="ctrnn-jax", description="Train and analyse ensembles of continuous-time RNNs (JAX).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _train.add_parsers(sub)
    _evaluate.add_parser(sub)
    _fixed_points.add_parser(sub)
    _analyze.add_parser(sub)
    _compare.add_parser(sub)
    _import_keras.add_parser(sub)
    parser.commands = dict(sub.choices)
    for name in DISTRIBUTED_COMMANDS:
        _add_distributed_options(parser.commands[name])
    return parser


def main(argv=None) -> int:
    if hasattr(signal, "SIGXFSZ"):  # a file over `ulimit -f` fails with EFBIG, one line like a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    use_cpu_cores()
    args = build_parser().parse_args(argv)
    use_compile_cache()
    distributed = _start_distributed(args)
    check_devices(args.prog)  # a misconfigured JAX (JAX_PLATFORMS, JAX_NUM_CPU_DEVICES): one line
    if distributed:
        return _run_distributed(lambda: run_command(args), args.heartbeat_timeout)
    return run_command(args)


__all__ = [
    "main",
    "build_parser",
    "use_cpu_cores",
    "config_from_args",
    "add_config_options",
    "TASK_NAMES",
    "PRESETS",
    "ConfigOptions",
    "field_help",
    "parse_fields",
]
