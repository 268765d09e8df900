"""Datasets in the forms teams keep them: JSON Lines, CSV and Parquet, one schema.

:func:`read_rows` reads a file by its suffix and validates every row with the same
pydantic model that JSONL rows go through (``gates.schema.GoldenCase``, ``AnswerRow``...),
so a row means the same whatever the file type. Errors name the file, the row (and, for
CSV, the line), the column and what the column should hold.

- ``.jsonl`` (and any other suffix): :func:`ragate_core.jsonl.read_jsonl`, unchanged.
- ``.csv``: UTF-8 (a BOM is allowed), a header row of column names; every cell is text,
  converted by the model (``true``/``false``, numbers); an empty cell is a missing value;
  a list column (``contexts``, ``source_ids``, ``tags``...) holds a JSON list in one cell,
  for example ``["first context", "second context"]``.
- ``.parquet`` / ``.pq``: read with pyarrow; list columns as ``list<string>`` (or a JSON
  list in a string column, as in CSV); nulls are missing values.

The same cell rules serve in-memory tables (:func:`validate_records`, used by
``gates.api.evaluate`` for DataFrames and lists of dicts).
"""

from __future__ import annotations

import csv
import json
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ragate_core.errors import UsageError
from ragate_core.jsonl import iter_validated, json_objects, read_jsonl

M = TypeVar("M", bound=BaseModel)

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


class DataError(UsageError, ValueError):
    """A dataset row or column that does not fit the schema.

    A :class:`UsageError` (the command line prints it and exits 2) and a ``ValueError``
    (what a Python caller expects from bad data). The message names where (file, row,
    line), the column and what it should hold.
    """


def read_rows(path: Path, model: type[M]) -> list[M]:
    """Read ``path`` (JSONL, CSV or Parquet, by suffix) and validate each row with ``model``.

    Returns the rows in file order. Raises :class:`DataError` for a missing or unreadable
    file, a missing or unknown column, a cell of the wrong type (naming the row and column)
    and a duplicate ``id``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return validate_records(_csv_records(path, model), model)
        if suffix in PARQUET_SUFFIXES:
            return validate_records(_parquet_records(path, model), model)
        return read_jsonl(path, model)
    except DataError:
        raise
    except UsageError as exc:  # read_jsonl's own messages, unchanged
        raise DataError(str(exc)) from exc


def iter_rows(path: Path, model: type[M]) -> Iterator[M]:
    """:func:`read_rows`, one row at a time: the same rows, checks and messages, but a JSON
    Lines file is read line by line, so a large dataset is never held whole (its text, its
    lines or its validated rows). A problem raises :class:`DataError` when its row is
    reached; rows before it have been yielded already. CSV and Parquet files are read whole
    (:func:`read_rows`) and yielded row by row."""
    path = Path(path)
    if path.suffix.lower() in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        yield from read_rows(path, model)
        return
    try:
        yield from iter_validated(json_objects(path), model, error=DataError)
    except DataError:
        raise
    except UsageError as exc:  # json_objects' own messages (file, line), unchanged
        raise DataError(str(exc)) from exc


def check_columns(columns: Sequence[str], model: type[BaseModel], where: str) -> None:
    """Every required field of ``model`` is a column, and every column is a field.

    ``where`` prefixes the message (a file name, or ``"data"``).
    """
    fields = model.model_fields
    repeated = sorted({str(c) for c in columns if list(columns).count(c) > 1})
    if repeated:
        raise DataError(
            f"{where}: duplicate column name{'s' if len(repeated) > 1 else ''} "
            f"{', '.join(map(repr, repeated))}"
        )
    missing = [name for name, info in fields.items() if info.is_required() and name not in columns]
    if missing:
        raise DataError(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"({describe_fields(model, missing)}); the columns are {', '.join(map(repr, columns)) or 'none'}"
        )
    unknown = [str(c) for c in columns if c not in fields]
    if unknown:
        raise DataError(
            f"{where}: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known columns: {', '.join(fields)}"
        )


def validate_records(records: Iterable[tuple[str, dict[str, Any]]], model: type[M]) -> list[M]:
    """Validate ``(where, record)`` pairs with ``model``, after :func:`clean_record`.

    ``where`` names the row in messages (``"data.csv:3 (row 2)"``, ``"row 'q1'"``).
    Duplicate ``id`` values are an error naming both rows.
    """
    return list(iter_validated_records(records, model))


def iter_validated_records(records: Iterable[tuple[str, dict[str, Any]]], model: type[M]) -> Iterator[M]:
    """:func:`validate_records` one record at a time (memory: the ids seen, not the rows)."""
    cleaned = ((where, f"at {where}", clean_record(record, model, where)) for where, record in records)
    return iter_validated(cleaned, model, lambda exc: describe_cells(exc, model), DataError)


def clean_record(record: dict[str, Any], model: type[BaseModel], where: str) -> dict[str, Any]:
    """Table cells as the model expects them.

    Missing values (``None``, NaN, pandas' NA) are left out, so optional columns may be
    empty; numpy scalars and arrays become Python values; a string in a list column must be
    a JSON list (the CSV convention) and is parsed.
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        value = _plain(value)
        if _missing(value):
            continue
        if isinstance(value, str) and _is_list_field(model, key) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{where}: column {key!r}: not a valid JSON list ({exc.msg}, character {exc.pos}); "
                    f'expected {_expected(model, key)}, written as a JSON list such as ["first", "second"]'
                ) from exc
        out[key] = value
    return out


def describe_fields(model: type[BaseModel], names: Iterable[str]) -> str:
    """``'contexts': a list of strings; ...`` for the named fields."""
    return "; ".join(f"{n!r}: {_expected(model, n)}" for n in names)


def describe_cells(exc: ValidationError, model: type[BaseModel]) -> str:
    """One phrase per pydantic error: column (and item), what it should hold, what it held."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        column = loc[0] if loc else "(row)"
        item = f" item {'.'.join(loc[1:])}" if len(loc) > 1 else ""
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown column {column!r}; known columns: {', '.join(model.model_fields)}")
        elif err["type"] == "missing":
            parts.append(f"column {column!r} is missing or empty; expected {_expected(model, column)}")
        else:
            got = err.get("input")
            hint = (
                ' (in a CSV cell: a JSON list such as ["first", "second"])'
                if isinstance(got, str) and not item and _is_list_field(model, column)
                else f" ({err['msg']})"
            )
            parts.append(
                f"column {column!r}{item}: expected {_expected(model, column)}, "
                f"got {type(got).__name__} {_short(got)}{hint}"
            )
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(value: Any) -> Any:
    # numpy scalars and arrays (pandas cells, Parquet via pandas) -> Python values.
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return type(value).__name__ in ("NAType", "NaTType")  # pandas' missing markers


def _annotation(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields.get(name)
    return None if info is None else info.annotation


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_list_field(model: type[BaseModel], name: str) -> bool:
    annotation, _ = _strip_optional(_annotation(model, name))
    return typing.get_origin(annotation) in (list, tuple)


_WORDS = {str: "a string", bool: "true or false", int: "a whole number", float: "a number"}


def _expected(model: type[BaseModel], name: str) -> str:
    annotation, optional = _strip_optional(_annotation(model, name))
    if annotation is None:
        return "no such column"
    if typing.get_origin(annotation) in (list, tuple):
        (item,) = typing.get_args(annotation)[:1] or (Any,)
        words = f"a list of {_WORDS.get(item, str(item)).removeprefix('a ')}s"
        words = words.replace("true or falses", "true/false values")
    else:
        words = _WORDS.get(annotation, str(annotation))
    info = model.model_fields[name]
    if annotation is str and any(getattr(m, "min_length", None) for m in info.metadata):
        words = "a non-blank string"
    return words + (" (may be empty)" if optional else "")


def _csv_records(path: Path, model: type[BaseModel]) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    required_str = {
        name
        for name, info in model.model_fields.items()
        if info.annotation is str and not info.metadata  # a plain str (e.g. answer) may be ""
    }
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:1: not UTF-8 text; save the file as UTF-8") from exc
        except csv.Error as exc:
            raise DataError(f"{path}:1: not valid CSV: {exc}") from exc
        if header is None:
            raise DataError(f"{path}: empty file; expected a header row ({', '.join(model.model_fields)})")
        header = [h.strip() for h in header]
        check_columns(header, model, str(path))
        row_number = 0
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{start}: not UTF-8 text; save the file as UTF-8") from exc
            except csv.Error as exc:
                raise DataError(f"{path}:{start}: not valid CSV: {exc}") from exc
            if not any(c.strip() for c in cells):
                continue  # blank line
            row_number += 1
            where = f"{path}:{start} (row {row_number})"
            if len(cells) > len(header):
                raise DataError(f"{where}: {len(cells)} cells, but the header has {len(header)} columns")
            record: dict[str, Any] = {}
            for name, cell in zip(header, cells):
                if cell != "" or name in required_str:
                    record[name] = cell
            yield where, record


def _parquet_records(path: Path, model: type[BaseModel]) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from exc
    # The columns first (a repeated name is said as for CSV), then the rows.
    check_columns(parquet.schema_arrow.names, model, str(path))
    yield from parquet_records(parquet, str(path))


def parquet_records(
    parquet: Any, where: str, columns: Sequence[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("<where>: row N", record)`` for each row of ``parquet`` (a ``pyarrow.parquet.ParquetFile``),
    N from 1, read a record batch at a time: memory holds one batch, not the file.
    ``columns``: only these (default: all). Raises :class:`DataError` for unreadable data."""
    import pyarrow as pa

    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=4096, columns=columns):
            for record in batch.to_pylist():
                number += 1
                yield f"{where}: row {number}", record
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{where}: not a readable Parquet file after row {number}: {exc}") from exc
