"""JSON Lines: every bad line is named by file:line, every write is atomic."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from gates.schema import QuestionRow
from ragate_core.errors import UsageError
from ragate_core.jsonl import atomic_writer, read_jsonl, write_jsonl, write_text


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    n: int = 0


def write_lines(path, *lines: str):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_valid_rows_skipping_blank_lines(tmp_path):
    path = write_lines(
        tmp_path / "rows.jsonl", '{"id": "a", "text": "x"}', "", "   ", '{"id": "b", "text": "y", "n": 2}'
    )
    rows = read_jsonl(path, Row)
    assert [(r.id, r.text, r.n) for r in rows] == [("a", "x", 0), ("b", "y", 2)]


def test_crlf_line_endings_are_accepted(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": "a", "text": "x"}\r\n{"id": "b", "text": "y"}\r\n')
    assert [r.id for r in read_jsonl(path, Row)] == ["a", "b"]


def test_a_byte_order_mark_is_not_part_of_the_first_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    assert [r.id for r in read_jsonl(path, Row)] == ["a", "b"]


# One bad line each: the message names file:line and what is wrong there.
BAD_LINES = {
    "malformed JSON": (
        Row,
        ['{"id": "a", "text": "x"}', "", '{"id": "b", "text": }'],
        r"rows\.jsonl:3: not valid JSON: .*\(column \d+\)",
    ),
    "not an object": (Row, ['["a", "b"]'], r"rows\.jsonl:1: expected a JSON object, got list"),
    "wrong type": (Row, ['{"id": "a", "text": "x", "n": "many"}'], r"rows\.jsonl:1: field 'n': .*'many'"),
    "duplicate id": (
        Row,
        ['{"id": "a", "text": "x"}', '{"id": "b", "text": "x"}', '{"id": "a", "text": "z"}'],
        r"rows\.jsonl:3: duplicate id 'a' \(first on line 1\)",
    ),
    "blank question": (QuestionRow, ['{"id": "q1", "question": "   "}'], r"rows\.jsonl:1: field 'question'"),
    # Python's json reads NaN and Infinity, which are not JSON: refused, not scored as NaN ms.
    "NaN": (Row, ['{"id": "a", "text": "x", "n": NaN}'], r"rows\.jsonl:1: not valid JSON: NaN is not a JSON"),
    "a key twice": (Row, ['{"id": "a", "text": "x", "id": "b"}'], r"rows\.jsonl:1: .*key 'id' given twice"),
    "Infinity": (Row, ['{"id": "a", "text": "x", "n": -Infinity}'], r"rows\.jsonl:1: .*-Infinity is not"),
}


@pytest.mark.parametrize(("model", "lines", "message"), list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_a_bad_line_is_named_by_file_and_line(tmp_path, model, lines, message):
    path = write_lines(tmp_path / "rows.jsonl", *lines)
    with pytest.raises(UsageError, match=message):
        read_jsonl(path, model)


def test_unknown_field_names_file_line_and_field(tmp_path):
    path = write_lines(tmp_path / "rows.jsonl", '{"id": "a", "text": "x"}', '{"id": "b", "txt": "y"}')
    with pytest.raises(UsageError) as info:
        read_jsonl(path, Row)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    assert "unknown field 'txt'" in message
    assert "missing field 'text'" in message


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": "a", "text": "x"}\n{"id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(UsageError, match=r"rows\.jsonl:2: not UTF-8"):
        read_jsonl(path, Row)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_jsonl(tmp_path / "absent.jsonl", Row)


def test_write_then_read_round_trips_unicode(tmp_path):
    rows = [{"id": "1", "text": "Ünïcödé ✓ 日本"}, {"id": "2", "text": 'quote " and \\ backslash', "n": 3}]
    path = tmp_path / "out" / "rows.jsonl"  # the folder is created
    assert write_jsonl(path, rows) == 2
    assert "Ünïcödé" in path.read_text(encoding="utf-8")  # written as text, not \\u escapes
    assert [r.model_dump(exclude_defaults=True) for r in read_jsonl(path, Row)] == rows


# Line and paragraph separators are valid inside a JSON string and json.dumps(ensure_ascii=False)
# writes them raw: a reader that splits on every Unicode line break would cut the row in two.
@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r"])
def test_unicode_line_separators_inside_strings_round_trip(tmp_path, separator):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"id": "a", "text": f"one{separator}two"}, {"id": "b", "text": "three"}])
    rows = read_jsonl(path, Row)
    assert [r.text for r in rows] == [f"one{separator}two", "three"]


@given(st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=4), max_size=5))
def test_any_rows_round_trip(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rt") / "rows.jsonl"

    class Any(BaseModel):
        model_config = ConfigDict(extra="allow")

    write_jsonl(path, data)
    assert [r.model_dump() for r in read_jsonl(path, Any)] == data


def test_atomic_writer_leaves_the_old_file_on_error(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("old\n", encoding="utf-8")

    def rows():
        yield {"id": "1"}
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        write_jsonl(path, rows())
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl"]  # no temporary left behind


def test_atomic_writer_creates_nothing_on_error(tmp_path):
    path = tmp_path / "new.jsonl"
    with pytest.raises(KeyboardInterrupt), atomic_writer(path) as handle:
        handle.write("half a line")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_write_text_replaces_content(tmp_path):
    path = tmp_path / "report.json"
    write_text(path, json.dumps({"a": 1}))
    write_text(path, json.dumps({"a": 2}))
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_an_unknown_field_lists_the_known_ones(tmp_path) -> None:
    from gates.schema import GoldenCase

    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "a", "question": "Q?", "ground_truth": "A.", "source_ids": [], "answerable": false}\n'
    )
    with pytest.raises(UsageError) as caught:
        read_jsonl(path, GoldenCase)
    message = str(caught.value)
    assert "qa.jsonl:1: unknown field 'answerable'" in message
    assert "(a row's fields: id, question, ground_truth, source_ids, tags)" in message
    # ...and what the field meant: `answerable` is documented for `ragate score` rows.
    assert message.endswith("a golden row is unanswerable when its source_ids is empty ([])")


def test_a_lone_surrogate_is_written_escaped_and_reads_back(tmp_path) -> None:
    """A text with a lone surrogate (read from JSON as "\\ud83d") cannot be UTF-8: its line is
    written with ASCII escapes; other lines keep their characters as they are."""
    from gates.metrics.base import answer_sha256
    from ragate_core.jsonl import json_objects, write_jsonl

    rows = [{"id": "a", "answer": "Grüße \ud83d!"}, {"id": "b", "answer": "Grüße"}]
    path = tmp_path / "out.jsonl"
    assert write_jsonl(path, rows) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "\\ud83d" in lines[0] and "Grüße" in lines[1]
    assert [row for _, _, row in json_objects(path)] == rows
    assert answer_sha256("Grüße \ud83d!") != answer_sha256("Grüße !")
