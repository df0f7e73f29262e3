"""Compile a pandera `DataFrameModel` into DuckDB SQL that finds every failing check of every row.

Why not `Model.validate(df)`: pandera on pandas costs ~11 s on the 3.4M-row benchmark year, three times
the whole plain-DuckDB pipeline, and pandera's ibis backend is not compatible with duckdb 2.0. The model
stays the single source of truth; this module only translates its declared checks, and fails loudly on a
check it cannot translate so the two can never drift. `tests/test_validation_properties.py` runs pandera itself
on corrupted real data and asserts both find exactly the same failures.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.pandas as pa

_DUCKDB_TYPES = {
    "Int64": "BIGINT",
    "int64": "BIGINT",
    "Float64": "DOUBLE",
    "float64": "DOUBLE",
    "string": "VARCHAR",
    "string[python]": "VARCHAR",
    "str": "VARCHAR",
    "datetime64[ns, UTC]": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class CompiledColumn:
    """How to type and check one column, in two stages so each cast runs once per value.

    Stage 1 (`text_expr`, `typed_expr`) reads the scanned text column; stage 2 (`failures`) refers to
    the stage-1 outputs by name: `"<name>"` is the text (NULL when empty) and `"t_<name>"` the typed value.
    """

    name: str
    sql_type: str
    text_expr: str
    typed_expr: str
    failures: tuple[tuple[str, str], ...]  # (reason, SQL predicate that is true when the row fails)

    @property
    def typed_name(self) -> str:
        return f'"t_{self.name}"'


def _quote(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _check_predicate(typed: str, check: pa.Check) -> str:
    stats = check.statistics
    ops = {
        "greater_than_or_equal_to": lambda: f"{typed} < {_quote(stats['min_value'])}",
        "greater_than": lambda: f"{typed} <= {_quote(stats['min_value'])}",
        "less_than_or_equal_to": lambda: f"{typed} > {_quote(stats['max_value'])}",
        "less_than": lambda: f"{typed} >= {_quote(stats['max_value'])}",
        "in_range": lambda: (
            f"NOT ({typed} BETWEEN {_quote(stats['min_value'])} AND {_quote(stats['max_value'])})"
        ),
        "isin": lambda: f"{typed} NOT IN ({', '.join(_quote(v) for v in stats['allowed_values'])})",
        "notin": lambda: f"{typed} IN ({', '.join(_quote(v) for v in stats['forbidden_values'])})",
        "str_matches": lambda: (
            f"NOT regexp_full_match({typed}, {_quote(stats['pattern'].lstrip('^').rstrip('$'))})"
        ),
        "equal_to": lambda: f"{typed} <> {_quote(stats['value'])}",
    }
    if check.name not in ops:
        raise NotImplementedError(f"pandera check {check.name!r} has no DuckDB translation yet")
    return ops[check.name]()


def compile_model(model: type[pa.DataFrameModel]) -> list[CompiledColumn]:
    """Per column: its DuckDB type, the cast expression and the predicates of each failing check.

    The raw column is VARCHAR as read from the file; an empty string means null (the landing contract).
    """
    compiled = []
    for name, column in model.to_schema().columns.items():
        sql_type = _DUCKDB_TYPES.get(str(column.dtype))
        if sql_type is None:
            raise NotImplementedError(f"column {name!r}: dtype {column.dtype} has no DuckDB mapping")
        # "<name>" is the value as scanned inside text_expr, and text_expr's result everywhere after it.
        text, typed = f'"{name}"', f'"t_{name}"'
        # TRIM decodes every character looking for Unicode spaces, which few values have: it runs only on
        # a value that starts or ends with a space or holds a non-ASCII character (where a Unicode space
        # could be). Same result, -0.3 s on the 10x year.
        text_expr = (
            f"CASE WHEN {text} LIKE ' %' OR {text} LIKE '% ' OR strlen({text}) <> length({text}) "
            f"THEN NULLIF(TRIM({text}), '') WHEN {text} <> '' THEN {text} END"
        )
        typed_expr = f"TRY_CAST({text} AS {sql_type})"
        if sql_type == "BIGINT":
            # Whole numbers only: TRY_CAST('1.5' AS BIGINT) rounds to 2, which would hide a wrong type. A
            # value that prints back unchanged is one; the regex decides only the others ('+5', '007').
            typed_expr = (
                f"CASE WHEN CAST({typed_expr} AS VARCHAR) = {text} "
                f"OR regexp_full_match({text}, '[+-]?[0-9]+') THEN {typed_expr} END"
            )
        failures = [(f"{name}:wrong_type", f"{text} IS NOT NULL AND {typed} IS NULL")]
        if not column.nullable:
            failures.append((f"{name}:not_nullable", f"{text} IS NULL"))
        failures.extend(
            (f"{name}:{check.name}", f"COALESCE({_check_predicate(typed, check)}, false)")
            for check in column.checks
        )
        compiled.append(CompiledColumn(name, sql_type, text_expr, typed_expr, tuple(failures)))
    return compiled


def _failure_pairs(columns: list[CompiledColumn], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [pair for column in columns for pair in column.failures] + list(extra)


def any_failure_sql(columns: list[CompiledColumn], extra: list[tuple[str, str]] = ()) -> str:
    """A SQL boolean: does the row fail any check (never NULL). Cheap enough to run on every row."""
    return f"COALESCE({' OR '.join(f'({p})' for _, p in _failure_pairs(columns, extra))}, false)"


def failure_reasons_sql(columns: list[CompiledColumn], extra: list[tuple[str, str]] = ()) -> str:
    """A SQL expression giving the list of failed checks of a row (empty list when the row is valid).

    Building a list per row is the costly part of validation: evaluate it only where `any_failure_sql`
    is true.
    """
    items = ", ".join(f"CASE WHEN {p} THEN '{reason}' END" for reason, p in _failure_pairs(columns, extra))
    return f"list_filter([{items}], lambda x: x IS NOT NULL)"
