"""One statement for many rows on PostgreSQL: a write of ``_queries.WRITES`` run over ``unnest()`` arrays.

psycopg runs ``executemany`` row by row (in a pipeline, one Bind and Execute each), about 17 µs of the
writer thread's CPU per row on this machine, holding the GIL the engine's event loop needs. The same
write as one statement whose parameters are one array per column, sent in psycopg's binary format
(text arrays are quoted element by element in Python: 9 to 11 µs per row), costs about 2 µs per row: an
``INSERT ... SELECT FROM unnest(...)``, or an ``UPDATE ... FROM unnest(...) AS u`` with every per-row
parameter of the statement read from ``u`` (so its ``SET`` and ``WHERE`` are the statement's own, unchanged).

``UPDATE ... FROM`` updates a row once even if several rows of the batch name it, where
``executemany`` applies each in turn: a batch whose rows of one kind name a row twice goes row by row
(``unique_keys``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Dialect, Executable, bindparam, func, insert, select
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import ARRAY

from ._queries import PreparedWrite, prepare_write

__all__ = ["BulkWrite", "bulk_write"]

#: the prefix of the parameters that pick the row an update changes (``b_execution_id``: column ``execution_id``)
KEY_PREFIX = "b_"


@dataclass(frozen=True)
class BulkWrite:
    """A write compiled for many rows at once; ``parameters(rows)`` are the driver's, for one ``execute``."""

    prepared: PreparedWrite
    names: tuple[str, ...]  # the per-row parameters, each one array
    keys: tuple[str, ...]  # of an update: the parameters that pick its row (none for an insert)
    #: for each of ``names``, what its column's values are made (``float``, ``int``; None: as they are): psycopg
    #: refuses a list that mixes types (a ``ready_at`` of 5 among floats), which row by row was no matter
    kinds: tuple[type | None, ...]

    @property
    def sql(self) -> str:
        return self.prepared.sql

    def unique_keys(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Whether no two of ``rows`` change the same row (always, for an insert)."""
        if not self.keys:
            return True
        keys = self.keys
        return len({tuple(row[k] for k in keys) for row in rows}) == len(rows)

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        arrays = {
            name: [row[name] for row in rows]
            if kind is None
            else [None if (v := row[name]) is None else kind(v) for row in rows]
            for name, kind in zip(self.names, self.kinds, strict=True)
        }
        return next(self.prepared.parameters([arrays]))


def bulk_write(
    statement: Executable, dialect: Dialect, schema_translate_map: Mapping[str | None, str] | None
) -> BulkWrite | None:
    """``statement`` (an insert of whole rows, or an update) over ``unnest()`` arrays; None if it has no such form.

    An update qualifies when each of its per-row parameters is named after a column of its table (a
    key parameter with ``KEY_PREFIX``): the column gives the array's type.
    """
    table: Any = statement.table if isinstance(statement, Insert | Update) else None
    if isinstance(statement, Insert):
        names = tuple(c.key for c in table.columns)
        types = {c.key: c.type for c in table.columns}
    elif isinstance(statement, Update):
        found: dict[str, None] = {}

        def collect(element: BindParameter[Any]) -> None:
            if element.required:
                found.setdefault(element.key, None)

        visitors.traverse(statement, {}, {"bindparam": collect})
        names = tuple(found)
        columns = table.c
        if not names or any(n.removeprefix(KEY_PREFIX) not in columns for n in names):
            return None
        types = {n: columns[n.removeprefix(KEY_PREFIX)].type for n in names}
    else:
        return None
    arrays = func.unnest(*(bindparam(n, type_=ARRAY(types[n])) for n in names))
    rows = arrays.table_valued(*names).render_derived().alias("u")
    if isinstance(statement, Insert):
        bulk: Executable = insert(statement.table).from_select(list(names), select(*(rows.c[n] for n in names)))
        keys: tuple[str, ...] = ()
    else:

        def from_rows(element: Any) -> Any:
            if isinstance(element, BindParameter) and element.required:
                return rows.c[element.key]
            return None

        bulk = visitors.replacement_traverse(statement, {}, from_rows)  # type: ignore[call-overload]
        keys = tuple(n for n in names if n.startswith(KEY_PREFIX))
    prepared = prepare_write(bulk, dialect, schema_translate_map)
    sql = prepared.sql
    for name in names:  # the arrays in psycopg's binary format: no quoting of every element in Python
        sql = sql.replace(f"%({name})s", f"%({name})b")
    kinds = tuple(_kind(types[n]) for n in names)
    return BulkWrite(replace(prepared, sql=sql), names, keys, kinds)


def _kind(column_type: Any) -> type | None:
    try:
        kind = column_type.python_type
    except NotImplementedError:
        return None
    return kind if kind in (float, int) else None
