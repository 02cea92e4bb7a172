"""Compare every user table of two PostgreSQL databases: row count and an order-independent checksum.

The checksum is the md5 of the sorted md5s of the rows' text (``md5(t::text)`` for each row ``t``): equal
exactly when both tables hold the same multiset of rows, whatever their physical order (a restore, a VACUUM
FULL or a different plan can reorder rows). Every table of every schema but PostgreSQL's own counts, the
marker table included; a table present on one side only is a mismatch. A ``scope`` limits a table to some rows
on both sides (the drill compares its markers only up to the newest one the restore holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

USER_TABLES = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
ORDER BY 1, 2
"""

Table = tuple[str, str]


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str


@dataclass(frozen=True)
class TableCheck:
    """One table on both sides; a side is None when the table is missing there."""

    table: Table
    source: TableSum | None
    restored: TableSum | None
    scope: str = "all rows"

    @property
    def name(self) -> str:
        return f"{self.table[0]}.{self.table[1]}"

    @property
    def match(self) -> bool:
        return self.source is not None and self.source == self.restored

    @property
    def problem(self) -> str | None:
        if self.match:
            return None
        if self.source is None:
            return f"{self.name}: only in the restore"
        if self.restored is None:
            return f"{self.name}: missing from the restore"
        if self.source.rows != self.restored.rows:
            return f"{self.name} ({self.scope}): {self.restored.rows} rows restored, {self.source.rows} in the source"
        return f"{self.name} ({self.scope}): same {self.source.rows} rows counted, different contents (checksum)"

    def to_dict(self) -> dict[str, Any]:
        def side(s: TableSum | None) -> dict[str, Any] | None:
            return None if s is None else {"rows": s.rows, "checksum": s.checksum}

        return {"table": self.name, "scope": self.scope, "source": side(self.source), "restored": side(self.restored), "match": self.match}


def user_tables(conn: psycopg.Connection[Any]) -> list[Table]:
    return [(str(schema), str(name)) for schema, name in conn.execute(USER_TABLES).fetchall()]


def table_sum(conn: psycopg.Connection[Any], table: Table, where: sql.Composable | None = None) -> TableSum:
    """Row count and order-independent checksum of ``table`` (only the rows ``where`` selects, if given)."""
    query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) FROM (SELECT md5(t::text) AS h FROM {} AS t {}) AS rows").format(
        sql.Identifier(*table), sql.SQL("WHERE ") + where if where is not None else sql.SQL("")
    )
    row = conn.execute(query).fetchone()
    if row is None:  # an aggregate always gives one row
        raise RuntimeError(f"no answer summing {table}")
    return TableSum(int(row[0]), str(row[1]))


def compare(
    source: psycopg.Connection[Any],
    restored: psycopg.Connection[Any],
    scopes: dict[Table, tuple[sql.Composable, str]] | None = None,
) -> list[TableCheck]:
    """Every user table of either side, summed on both (``scopes``: a WHERE clause and its description, per table)."""
    scopes = scopes or {}
    on_source, on_restored = set(user_tables(source)), set(user_tables(restored))
    checks = []
    for table in sorted(on_source | on_restored):
        where, described = scopes.get(table, (None, "all rows"))
        checks.append(
            TableCheck(
                table,
                table_sum(source, table, where) if table in on_source else None,
                table_sum(restored, table, where) if table in on_restored else None,
                described,
            )
        )
    return checks
