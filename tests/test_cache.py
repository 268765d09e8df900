"""The content-addressed SQLite cache: round trips, misses, bypass, and two writers at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from gates.cache import Cache, NoCache, content_key
from ragate_core.errors import UsageError


def test_content_key_is_stable_and_content_addressed() -> None:
    key = content_key("generation", {"model": "m1", "prompt": "p1"}, "How much?", 0, None)
    assert key == content_key("generation", {"prompt": "p1", "model": "m1"}, "How much?", 0, None)
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != content_key("generation", {"model": "m2", "prompt": "p1"}, "How much?", 0, None)
    assert key != content_key("generation", {"model": "m1", "prompt": "p1"}, "How much?", 1, None)
    assert key != content_key("judgment", {"model": "m1", "prompt": "p1"}, "How much?", 0, None)


def test_round_trip_survives_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "gates.sqlite"
    value = {"answer": "Prix: 29 € — oui", "contexts": ["a", "b"], "latency_ms": 12.5, "rail": None}
    cache = Cache(path)
    cache.put_many("generation", {"k1": value, "k2": [1, 2, 3]})

    assert cache.get_many("generation", ["k1", "k2"]) == {"k1": value, "k2": [1, 2, 3]}
    assert Cache(path).get_many("generation", ["k1"]) == {"k1": value}


def test_misses_and_namespaces(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("judgment", {"k": {"value": 0.5}})

    assert cache.get_many("generation", ["k"]) == {}  # same key, other namespace
    assert cache.get_many("judgment", ["k", "other", "k"]) == {"k": {"value": 0.5}}
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_later_value_replaces_an_earlier_one(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("judgment", {"k": 1})
    cache.put_many("judgment", {"k": 2})
    cache.put_many("judgment", {})
    assert cache.get_many("judgment", ["k"]) == {"k": 2}


def test_many_keys_in_one_lookup(tmp_path: Path) -> None:
    # More keys than one SQL statement takes at once: the lookup works in chunks.
    cache = Cache(tmp_path / "c.sqlite")
    items = {f"k{i}": i for i in range(1234)}
    cache.put_many("judgment", items)
    assert cache.get_many("judgment", list(items)) == items


def test_no_cache_misses_everything_and_stores_nothing() -> None:
    cache = NoCache()
    cache.put_many("generation", {"k": 1})
    assert cache.get_many("generation", ["k", "j"]) == {}
    assert cache.misses == 2


def _writer(path: str, worker: int, start: multiprocessing.synchronize.Event, rounds: int) -> None:
    start.wait(30)
    cache = Cache(Path(path))
    for i in range(rounds):
        cache.put_many("generation", {f"w{worker}-{i}": {"i": i}, f"shared-{i}": {"by": worker}})
        found = cache.get_many("generation", [f"w{worker}-{i}", f"shared-{i}"])
        assert found[f"w{worker}-{i}"] == {"i": i}, found


def test_two_processes_write_the_same_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "gates.sqlite"  # created by the workers themselves, concurrently
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    rounds = 60
    workers = [ctx.Process(target=_writer, args=(str(path), w, start, rounds)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(120)

    assert [w.exitcode for w in workers] == [0, 0]
    cache = Cache(path)
    keys = [f"w{w}-{i}" for w in (1, 2) for i in range(rounds)]
    assert len(cache.get_many("generation", keys)) == 2 * rounds
    shared = cache.get_many("generation", [f"shared-{i}" for i in range(rounds)])
    assert len(shared) == rounds and {v["by"] for v in shared.values()} <= {1, 2}


def test_a_damaged_cache_file_is_a_usage_error_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "gates.sqlite"
    path.write_bytes(b"not a database, " * 200)

    with pytest.raises(UsageError) as excinfo:
        Cache(path)

    text = str(excinfo.value)
    assert text.startswith(f"{path}: the gate cache is unreadable")
    assert "delete that file" in text and "--gate-no-cache" in text
