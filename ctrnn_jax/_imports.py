"""A user's own classes by import string: `"package.module:QualName"` (what `--task my_module:SineGen`,
`--cell my_module:LowRank` and run folders use for tasks and cells defined outside the package)."""

import importlib
from typing import TypeGuard

SEPARATOR = ":"


def is_import_string(text: object) -> TypeGuard[str]:
    """Whether `text` has the form `module:QualName` (a name of the registry never contains `:`)."""
    return isinstance(text, str) and SEPARATOR in text


def import_string(obj: object) -> str:
    """`"module:QualName"` of a class (or function) defined at a module's top level (or nested in a class).

    Raises `ValueError` when `obj` is defined inside a function (`<locals>`): it could not be imported again. A class
    of `__main__` (a script or a notebook) is named `__main__:QualName`, found again only in a process that defines
    it: put what other processes (the command line) should find in a module."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"{obj!r} has no module and qualified name to import it by.")
    if "<locals>" in qualname:
        raise ValueError(
            f"{module}.{qualname} is defined inside a function: define it at the top level of a "
            "module so that it can be imported again."
        )
    return f"{module}{SEPARATOR}{qualname}"


def import_object(spec: str, *, what: str = "object", base: type | None = None):
    """The object named by `spec` = `"module:QualName"`, imported; with `base`, it must be a subclass of it.

    Raises `ValueError` in one line, naming `spec` and the reason (a malformed string, a module that cannot be
    imported, a missing name, a wrong kind of object), never with the import's traceback."""
    if not is_import_string(spec):
        raise ValueError(f"a {what} given by import string must read `module:QualName`, got {spec!r}.")
    module_name, _, qualname = spec.partition(SEPARATOR)
    if not module_name or not qualname or SEPARATOR in qualname:
        raise ValueError(f"a {what} given by import string must read `module:QualName`, got {spec!r}.")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any failure of a user's module is one line
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        raise ValueError(
            f"cannot import the {what} {spec!r}: module {module_name!r} fails to import ({reason}); "
            "is it installed or on PYTHONPATH?"
        ) from None
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"cannot import the {what} {spec!r}: {module_name!r} has no {qualname!r}.")
        obj = getattr(obj, part)
    if base is not None and not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(
            f"the {what} {spec!r} must be a subclass of {base.__module__.split('._')[0]}.{base.__name__}, got {obj!r}."
        )
    return obj


__all__ = ["import_object", "import_string", "is_import_string"]
