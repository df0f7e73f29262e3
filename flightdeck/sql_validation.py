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

from flightdeck.schemas import MAX_SIGNIFICANT_DIGITS, NUMBER_SPELLING

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
    """How to type and check one column, in stages so each cast runs once per value.

    Stage 1 (`scan_expr`) reads the scanned column into `"<name>"`; stage 2 (`typed_expr`) types it into
    `"t_<name>"`; stage 3 (`failures`) refers to both by name, and to `text`: the value as text with
    surrounding spaces removed, NULL when empty (the landing contract).
    """

    name: str
    sql_type: str
    scan_expr: str
    text: str
    typed_expr: str
    failures: tuple[tuple[str, str], ...]  # (reason, SQL predicate: true when the row fails, NULL passes)
    fails: str  # true when any of `failures` is: the same answer in fewer operations, run on every row

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
    schema = model.to_schema()
    parsers = {parser.name for parser in schema.parsers}
    if parsers - {"whole_numbers"}:
        raise NotImplementedError(f"pandera parsers {sorted(parsers)} have no DuckDB translation yet")
    compiled = []
    for name, column in schema.columns.items():
        sql_type = _DUCKDB_TYPES.get(str(column.dtype))
        if sql_type is None:
            raise NotImplementedError(f"column {name!r}: dtype {column.dtype} has no DuckDB mapping")
        scanned, typed = f'"{name}"', f'"t_{name}"'
        # TRIM decodes every character looking for Unicode spaces, which few values have: it runs only on
        # a value that starts or ends with a space or holds a non-ASCII character (where a Unicode space
        # could be). Same result as NULLIF(TRIM(value), ''), -0.3 s on the 10x year.
        trimmed = (
            f"CASE WHEN {scanned} LIKE ' %' OR {scanned} LIKE '% ' OR strlen({scanned}) <> length({scanned}) "
            f"THEN NULLIF(TRIM({scanned}), '') WHEN {scanned} <> '' THEN {scanned} END"
        )
        if sql_type == "VARCHAR":  # the text is the value: trimmed once, in stage 1
            scan_expr, text, typed_expr = trimmed, scanned, scanned
        else:
            # A number or timestamp is trimmed only where the value as scanned does not cast: a value that
            # casts has at most ASCII spaces around it, which the cast ignores as TRIM would remove them.
            # CASE evaluates `trimmed` for those rows only (mostly empty values): of the 10x year's 1.9
            # CPU-seconds of trimming, 0.4 are left.
            scan_expr, text = scanned, trimmed
            typed_expr = (
                f"COALESCE(TRY_CAST({scanned} AS {sql_type}), "
                f"CASE WHEN {scanned} IS NOT NULL THEN TRY_CAST({trimmed} AS {sql_type}) END)"
            )
        if sql_type == "BIGINT":
            # Whole numbers only: TRY_CAST('1.5' AS BIGINT) rounds to 2, which would hide a wrong type. A
            # value that prints back unchanged is one; the regex decides only the others (' 5', '+5', '007').
            typed_expr = (
                f"CASE WHEN CAST(TRY_CAST({scanned} AS BIGINT) AS VARCHAR) = {scanned} "
                f"THEN TRY_CAST({scanned} AS BIGINT) "
                f"WHEN regexp_full_match({trimmed}, '[+-]?[0-9]+') THEN TRY_CAST({trimmed} AS BIGINT) "
                + (_whole_number_spelling(trimmed) if "whole_numbers" in parsers else "")
                + "END"
            )
        # Both imply a NULL typed value: CASE keeps `text` off the rows that typed fine (AND would not).
        failures = [
            (f"{name}:wrong_type", f"CASE WHEN {typed} IS NULL THEN {text} IS NOT NULL ELSE false END")
        ]
        if not column.nullable:
            failures.append(
                (f"{name}:not_nullable", f"CASE WHEN {typed} IS NULL THEN {text} IS NULL ELSE false END")
            )
        failures.extend((f"{name}:{check.name}", _check_predicate(typed, check)) for check in column.checks)
        compiled.append(
            CompiledColumn(
                name, sql_type, scan_expr, text, typed_expr, tuple(failures), _fails(column, typed, text)
            )
        )
    return compiled


def _whole_number_spelling(trimmed: str) -> str:
    """The `whole_numbers` parser of `flightdeck/schemas.py` as one more CASE branch of an integer column:
    only values that are not plain integers get here, so the common path costs nothing more."""
    mantissa = f"regexp_replace(regexp_extract({trimmed}, '^[+-]?([0-9.]+)', 1), '[.]', '', 'g')"
    digits = f"length(trim({mantissa}, '0'))"
    number = f"TRY_CAST({trimmed} AS DOUBLE)"
    return (
        f"WHEN regexp_full_match({trimmed}, '{NUMBER_SPELLING}') AND {digits} <= {MAX_SIGNIFICANT_DIGITS} "
        f"AND {number} = trunc({number}) THEN TRY_CAST({number} AS BIGINT) "
    )


def _fails(column: pa.Column, typed: str, text: str) -> str:
    """One predicate for "the value fails a check", for the row-level flag that every row computes.

    A NULL typed value is a wrong type or a missing value: for a required column either fails, so the
    text is never needed; a range is one BETWEEN rather than two comparisons. NULL counts as passing.
    """
    checks = {check.name: check for check in column.checks}
    values = []
    if "greater_than_or_equal_to" in checks and "less_than_or_equal_to" in checks:
        low = checks.pop("greater_than_or_equal_to").statistics["min_value"]
        high = checks.pop("less_than_or_equal_to").statistics["max_value"]
        values.append(f"NOT ({typed} BETWEEN {_quote(low)} AND {_quote(high)})")
    values.extend(_check_predicate(typed, check) for check in checks.values())
    value_fails = " OR ".join(f"({v})" for v in values) or "false"
    if column.nullable:
        return f"CASE WHEN {typed} IS NULL THEN {text} IS NOT NULL ELSE {value_fails} END"
    return f"{typed} IS NULL OR {value_fails}"


def _failure_pairs(columns: list[CompiledColumn], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [pair for column in columns for pair in column.failures] + list(extra)


def any_failure_sql(columns: list[CompiledColumn], extra: list[tuple[str, str]] = ()) -> str:
    """A SQL boolean: does the row fail any check (never NULL). Cheap enough to run on every row."""
    predicates = [c.fails for c in columns] + [p for _, p in extra]
    return f"COALESCE({' OR '.join(f'({p})' for p in predicates)}, false)"


def failure_reasons_sql(columns: list[CompiledColumn], extra: list[tuple[str, str]] = ()) -> str:
    """A SQL expression giving the list of failed checks of a row (empty list when the row is valid).

    Building a list per row is the costly part of validation: evaluate it only where `any_failure_sql`
    is true.
    """
    items = ", ".join(f"CASE WHEN {p} THEN '{reason}' END" for reason, p in _failure_pairs(columns, extra))
    return f"list_filter([{items}], lambda x: x IS NOT NULL)"
