"""JSON Lines in and out: every bad line named by file and line, every output atomic."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from ragate_core.errors import UsageError

M = TypeVar("M", bound=BaseModel)


def describe_validation(exc: ValidationError) -> str:
    """One line per pydantic error: ``key: message (got value)``."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(row)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {key!r}")
        elif err["type"] == "missing":
            parts.append(f"missing field {key!r}")
        else:
            parts.append(f"field {key!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    """Read ``path`` as JSON Lines, validating each row with ``model``.

    Blank lines are skipped. Any problem raises :class:`UsageError` naming ``file:line``.
    """
    return validate_rows(json_objects(path), model)


def validate_rows(
    rows: Iterable[tuple[str, str, dict[str, Any]]],
    model: type[M],
    describe: Callable[[ValidationError], str] = describe_validation,
    error: type[UsageError] = UsageError,
) -> list[M]:
    """Validate ``(where, first, data)`` rows with ``model``, in order; the one loop for every row source.

    A known field whose value is ``None`` counts as absent. ``where`` prefixes a message
    about the row (``"qa.jsonl:3"``); ``first`` is how a later row with the same ``id``
    names this one (``"on line 3"``). ``describe`` words a pydantic error (default
    :func:`describe_validation`); messages are raised as ``error`` (a :class:`UsageError`
    subclass). Rows are consumed lazily, so a source's own errors (bad JSON, a bad cell)
    surface at their row.
    """
    return list(iter_validated(rows, model, describe, error))


def iter_validated(
    rows: Iterable[tuple[str, str, dict[str, Any]]],
    model: type[M],
    describe: Callable[[ValidationError], str] = describe_validation,
    error: type[UsageError] = UsageError,
) -> Iterator[M]:
    """:func:`validate_rows` one row at a time: a problem is raised when its row is reached."""
    seen: dict[Any, str] = {}
    for where, first, data in rows:
        # A field that is null is a field left out, whatever the source (JSON null, an empty
        # Parquet or CSV cell): an optional one takes its default, a required one is missing.
        # An unknown key stays, null or not, to be refused (a typo must not pass).
        data = {k: v for k, v in data.items() if v is not None or k not in model.model_fields}
        try:
            row = model.model_validate(data)
        except ValidationError as exc:
            known = ""
            extra = [str(e["loc"][-1]) for e in exc.errors() if e["type"] == "extra_forbidden" and e["loc"]]
            if extra:
                known = f" (a row's fields: {', '.join(model.model_fields)})"
                hints = getattr(model, "FIELD_HINTS", {})
                known += "".join(f"; {hints[name]}" for name in extra if name in hints)
            raise error(f"{where}: {describe(exc)}{known}") from exc
        row_id = getattr(row, "id", None)
        if row_id is not None:
            if row_id in seen:
                raise error(f"{where}: duplicate id {row_id!r} (first {seen[row_id]})")
            seen[row_id] = first
        yield row


def json_objects(path: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(path:line, "on line N", object)`` for each non-blank line of a JSONL file.

    Raises :class:`UsageError` naming file:line for a missing file, non-UTF-8 bytes, bad
    JSON (``NaN`` and ``Infinity`` included: Python's extension, not JSON, RFC 8259 section 6)
    or a line that is not an object."""
    for lineno, raw in _lines(path):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw, parse_constant=_not_json, object_pairs_hook=_one_value_per_key)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
        except _NotJson as exc:
            raise UsageError(f"{path}:{lineno}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{path}:{lineno}: expected a JSON object, got {type(data).__name__}")
        yield f"{path}:{lineno}", f"on line {lineno}", data


class _NotJson(ValueError):
    """What Python's json reads and JSON is not: ``NaN``, ``Infinity``, a key given twice."""


def _not_json(constant: str) -> Any:
    raise _NotJson(f"{constant} is not a JSON value; write null for a missing one")


def _one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all distinct (JSON leaves a repeated key undefined; Python
    keeps the last: ``{"id": "a", "id": "b"}`` would be scored as ``b`` without a word)."""
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _NotJson(f"the key {twice!r} given twice in one object")
    return data


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line, read one at a time (a file is never held whole)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    offset = 0
    with path.open("rb") as handle:
        # Split on "\n" only (a trailing "\r" is JSON whitespace): str.splitlines() also breaks
        # at U+2028, U+2029 and U+0085, which json.dumps(ensure_ascii=False) leaves raw inside
        # strings, so a row written by write_jsonl would come back cut in two.
        for lineno, raw in enumerate(handle, start=1):
            size = len(raw)
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            try:
                # A byte-order mark (Windows editors write one) is not part of the first row.
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"{path}:{lineno}: not UTF-8 text (byte {offset + exc.start}); save the file as UTF-8"
                ) from exc
            offset += size
            yield lineno, line


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


@contextmanager
def atomic_writer(path: Path) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and move it into place on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; the file we replace keeps its mode, a new one gets
        # the mode open() would give it (0666 less the umask).
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_line(row: Any) -> str:
    """``row`` as one line of JSON (no newline), non-ASCII characters as themselves; a text
    holding a lone surrogate (``"\\ud83d"`` read from JSON), which UTF-8 cannot encode, is
    written with ASCII escapes instead, so it reads back the same."""
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(row)
    return line


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` atomically as JSON Lines (:func:`json_line`); returns the number written."""
    count = 0
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json_line(row) + "\n")
            count += 1
    return count


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(text)
