"""Results: `Result`, the one base class of every result object of the library (fixed points, linearizations,
memory states, memory checks, topologies, continuations, analyses, comparisons, ...), and the tables they print
as.

A result is data and views of it: `to_dict()` is its data as plain JSON (lists, numbers, strings, `None`; arrays
as nested lists), and `repr(result)` (a terminal) and `result._repr_html_()` (a notebook) show it as one table,
built from `_table()`. Callers never ask which result they hold.
"""

import abc
import html
from typing import ClassVar


def text_table(title: str, header: list[str], body: list[list[str]], max_rows: int = 20) -> str:
    """A plain-text table under a title line: right-aligned columns, at most `max_rows` rows shown."""
    width = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(header, width))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, width)) for r in body[:max_rows]]
    if len(body) > max_rows:
        lines.append(f"... ({len(body) - max_rows} more rows)")
    return "\n".join(lines)


def html_table(title_html: str, header: list[str], body: list[list[str]]) -> str:
    """The same table in HTML, for notebooks (`_repr_html_`); cells are escaped, `title_html` is not."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<p>{title_html}</p><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


class Result(abc.ABC):
    """The interface of every result object.

    A subclass implements `to_dict` and `_table`; `__repr__` (a text table of at most `_max_rows` rows) and
    `_repr_html_` (an HTML table whose title starts with the class name in bold when the title does) come from
    `_table`. A dataclass subclass that relies on them is declared with `repr=False` (a dataclass otherwise
    writes its own `__repr__`).
    """

    _max_rows: ClassVar[int] = 20  # the rows `repr` shows

    @abc.abstractmethod
    def to_dict(self) -> dict:
        """The result as plain JSON types (`json.dumps` takes it): lists, numbers, strings, bools, `None`."""

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        """`(title, header, rows)`: the table `repr` and `_repr_html_` show (every cell a string)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither `_table` nor its own `__repr__`.")

    def __repr__(self) -> str:
        return text_table(*self._table(), max_rows=self._max_rows)

    def _repr_html_(self) -> str:
        title, header, body = self._table()
        name, colon, rest = title.partition(": ")
        if colon and name == type(self).__name__:
            return html_table(f"<b>{html.escape(name)}</b>: {html.escape(rest)}", header, body)
        return html_table(html.escape(title), header, body)


__all__ = ["Result", "html_table", "text_table"]
