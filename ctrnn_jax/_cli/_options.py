"""Command-line options generated from config dataclasses: one option per field, its help the field's
bullet in the class docstring's `**Fields:**` section, its value parsed from the field's type, and
`choices=` where the library has a fixed set of values (so that `--help` lists them; `--cell` also takes
the import string `module:QualName` of a cell of one's own).

An option not given leaves no value (`default=argparse.SUPPRESS`; `none` is a value: None), so that a
command can tell what was given explicitly and apply its own precedence (dataclass defaults < presets <
explicit options).
"""

import argparse
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping

from .._imports import is_import_string
from ..dynamics._config import FixedPointConfig
from ..models._activations import ACTIVATIONS
from ..models._initializers import READOUT_INITS, RECURRENT_INITS
from ..models._scan import BACKPROPS, PRECISIONS
from ..tasks._flipflop import PULSES, FlipFlopConfig
from ..training._ensemble import CELLS, EnsembleConfig
from ..training._train import TrainConfig

# The fields with a fixed set of values: the option gets `choices=` (listed by `--help`).
CHOICES: dict[tuple[type, str], tuple[str, ...]] = {
    (EnsembleConfig, "activation"): tuple(ACTIVATIONS),
    (EnsembleConfig, "recurrent_init"): RECURRENT_INITS,
    (EnsembleConfig, "readout_init"): READOUT_INITS,
    (TrainConfig, "backprop"): BACKPROPS,
    (TrainConfig, "precision"): PRECISIONS,
    (FixedPointConfig, "dtype"): ("float32", "float64"),  # as FixedPointConfig.__post_init__ checks
    (FlipFlopConfig, "pulses"): PULSES,
}

# The fields that take one of a fixed set of names or the import string `module:QualName` of a class of one's
# own (`--cell my_module:LowRank`): `--help` lists the names; the config imports the class.
OPEN_CHOICES: dict[tuple[type, str], tuple[str, ...]] = {
    (EnsembleConfig, "cell"): CELLS,
}

_HEADER = "**Fields:**"
_BULLET = re.compile(r"- `(\w+)`: (.*)")


def parse_fields(doc: str | None) -> dict[str, str]:
    """The `**Fields:**` section of a docstring as `{field: text}`.

    The section is a list of bullets ``- `name`: text.``, continuation lines indented; it ends at the
    first line after it that is neither a bullet, nor indented, nor blank. Each text is returned on one
    line (continuations joined by spaces). No section: `{}`. A field listed twice: ValueError.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == _HEADER), None)
    if start is None:
        return {}
    fields: dict[str, list[str]] = {}
    name = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        bullet = _BULLET.fullmatch(line.rstrip())
        if bullet:
            name = bullet[1]
            if name in fields:
                raise ValueError(f"field `{name}` is listed twice in the {_HEADER} section.")
            fields[name] = [bullet[2].strip()]
        elif name is not None and line[:1].isspace():
            fields[name].append(line.strip())
        else:
            break
    return {k: " ".join(v) for k, v in fields.items()}


def field_help(cls: type) -> dict[str, str]:
    """`{field: text}` for every field of the dataclass `cls`, from its docstring (`parse_fields`).

    Fails loudly (TypeError) when a field has no bullet or a bullet names no field: the help of the
    command line is the class's documentation, so both must be complete.
    """
    docs = parse_fields(cls.__doc__)
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in docs]
    unknown = sorted(set(docs) - set(names))
    if missing or unknown:
        raise TypeError(
            f"{cls.__name__}'s docstring must document every field in its {_HEADER} section "
            f"(``- `name`: text.``): "
            + "; ".join(
                ([f"no bullet for {', '.join(missing)}"] if missing else [])
                + ([f"bullets for no field: {', '.join(unknown)}"] if unknown else [])
            )
            + "."
        )
    return {n: docs[n] for n in names}


def _is_union(kind) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def metavar(kind) -> str:
    """How an option's value is written, from the field's type: `N` (int), `X` (float), `NAME`
    (str), `X,...` (a tuple), `N,N` (a pair), `X|X,...` (one value or one per member), `...|none`."""
    if _is_union(kind):
        args = typing.get_args(kind)
        text = "|".join(metavar(a) for a in args if a is not type(None))
        return text + ("|none" if type(None) in args else "")
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"{metavar(args[0])},..."
        return ",".join(metavar(a) for a in args)
    return {int: "N", float: "X"}.get(kind, "NAME")


def parse_value(kind, text: str):
    """Parse an option's text for a dataclass field of type `kind` (ValueError when it does not fit):
    `none` for None, comma-separated values for a tuple, and for a union the first type that fits."""
    if _is_union(kind):
        args = typing.get_args(kind)
        if type(None) in args and text.strip().lower() == "none":
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return parse_value(a, text)
            except ValueError:
                continue
        raise ValueError(f"invalid value {text!r}")
    if typing.get_origin(kind) is tuple:
        return tuple(parse_value(typing.get_args(kind)[0], t.strip()) for t in text.split(",") if t.strip())
    if kind is bool:
        if text.strip().lower() not in ("true", "false"):
            raise ValueError(f"invalid value {text!r}: expected true or false")
        return text.strip().lower() == "true"
    if kind is int:
        return int(text)
    if kind is float:
        if "," in text:
            raise ValueError(f"invalid number {text!r}")
        value = float(text)
        if not math.isfinite(value):  # nan, inf, 1e999: no option means anything by them
            raise ValueError(f"{text!r} is not a finite number")
        return value
    return text


def _not_finite(text: str) -> bool:
    """Whether one of the comma-separated parts of `text` is a number but not a finite one (`nan`, `inf`)."""
    for part in text.split(","):
        try:
            if not math.isfinite(float(part)):
                return True
        except ValueError:
            continue
    return False


def invalid_value(kind, text: str) -> str:
    """Why `text` is no value of type `kind`: the expected form, and, for `nan` or `inf`, that only
    finite numbers are taken."""
    finite = "; finite numbers only" if _not_finite(text) else ""
    return f"invalid value {text!r} (expected {metavar(kind)}{finite})"


def _converter(kind):
    """An argparse `type=`: the parsed value, or a usage error that shows the expected form (`invalid_value`)."""

    def convert(text: str):
        try:
            return parse_value(kind, text)
        except ValueError:
            raise argparse.ArgumentTypeError(invalid_value(kind, text)) from None

    return convert


# `type=` of a plain float option (`--threshold`): a finite number, else a one-line usage error.
finite_float = _converter(float)


def _name_or_import_string(choices: tuple[str, ...]):
    """An argparse `type`: a name of `choices`, or any `module:QualName` (imported, and checked, by the config)."""

    def convert(text: str) -> str:
        if text in choices or is_import_string(text):
            return text
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(choices)}, or give the "
            "import string module:QualName of a class of your own)"
        )

    return convert


def format_value(value) -> str:
    """A value as the command line writes it: `none`, `true`, `1,5`."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def _help_text(text: str) -> str:
    """A docstring bullet as argparse help: without Markdown backticks and the final period, `%` escaped."""
    text = text.replace("`", "").replace("%", "%%")
    return text[:-1] if text.endswith(".") else text


@dataclasses.dataclass(frozen=True)
class ConfigOptions:
    """How the fields of the config dataclass `cls` become command-line options.

    - `cls`: the config dataclass (its docstring documents every field, see `field_help`).
    - `dest`: the prefix of the parsed values' names (`args.<dest>.<field>`, read with `getattr`).
    - `flags`: `{field: (option, alias, ...)}` where the option is not `--field-name`.
    - `defaults`: `{field: value}`, this command's base values where they are not the dataclass's.
    - `shown_defaults`: `{field: text}`, the default the help shows where it is not a value (e.g. "the
      task's").
    """

    cls: type
    dest: str
    flags: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    defaults: Mapping[str, object] = dataclasses.field(default_factory=dict)
    shown_defaults: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def flag(self, name: str) -> str:
        """The option of field `name` (its first spelling)."""
        return self.option_strings(name)[0]

    def option_strings(self, name: str) -> tuple[str, ...]:
        return tuple(self.flags.get(name, ("--" + name.replace("_", "-"),)))

    def add_to(self, parser: argparse.ArgumentParser, title: str, description: str | None = None):
        """Add one option per field to a new argument group of `parser`; returns the group."""
        group = parser.add_argument_group(title, description)
        hints = typing.get_type_hints(self.cls)
        docs = field_help(self.cls)
        for f in dataclasses.fields(self.cls):
            kind = hints[f.name]
            default = self.shown_defaults.get(f.name, format_value(self.defaults.get(f.name, f.default)))
            help_ = f"{_help_text(docs[f.name])} (default: {default})"
            names = self.option_strings(f.name)
            common: dict[str, typing.Any] = {
                "dest": f"{self.dest}.{f.name}",
                "default": argparse.SUPPRESS,
                "help": help_,
            }
            if kind is bool:
                group.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
            elif (self.cls, f.name) in OPEN_CHOICES:
                choices = OPEN_CHOICES[(self.cls, f.name)]
                group.add_argument(
                    *names,
                    type=_name_or_import_string(choices),
                    metavar="{" + ",".join(choices) + ",module:QualName}",
                    **common,
                )
            elif (self.cls, f.name) in CHOICES:
                group.add_argument(*names, choices=CHOICES[(self.cls, f.name)], **common)
            else:
                group.add_argument(*names, type=_converter(kind), metavar=metavar(kind), **common)
        return group

    def explicit(self, args: argparse.Namespace) -> dict:
        """The fields given on the command line, `{field: value}` (typed)."""
        given = vars(args)
        return {
            f.name: given[f"{self.dest}.{f.name}"]
            for f in dataclasses.fields(self.cls)
            if f"{self.dest}.{f.name}" in given
        }

    def build(self, args: argparse.Namespace):
        """The config: the dataclass defaults < this command's `defaults` < the explicit options."""
        return self.cls(**{**self.defaults, **self.explicit(args)})
