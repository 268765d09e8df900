"""gates.plugin.pytest_ignore_collect: which test modules an all-gate run imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.plugin import pytest_ignore_collect


class FakeConfig:
    """Stands in for ``pytest.Config``: only what the hook reads (``-m`` and where the paths came from)."""

    def __init__(self, markexpr: str = "gate", source: object = pytest.Config.ArgsSource.TESTPATHS) -> None:
        self.args_source = source
        self._markexpr = markexpr

    def getoption(self, name: str, default: object = None) -> object:
        return self._markexpr if name == "markexpr" else default


def _ignored(tmp_path: Path, source: str, config: FakeConfig | None = None) -> bool | None:
    path = tmp_path / "test_module.py"
    path.write_text(source, encoding="utf-8")
    return pytest_ignore_collect(path, config or FakeConfig())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        "import pytest\n\n@pytest.mark.gate\ndef test_x():\n    pass\n",
        "def test_x(gate_case):\n    gate_case.check()\n",
        "def test_x(gate_metric):\n    pass\n",
        "from gates.suite import *\n",
        "pytestmark = [pytest.mark.gate('faithfulness')]\n",
    ],
)
def test_a_module_that_can_hold_a_gate_is_collected(tmp_path, source):
    assert _ignored(tmp_path, source) is None


@pytest.mark.parametrize(
    "source",
    [
        "def test_x():\n    assert 1\n",
        # pytester sources and comments mention the signs; the module itself holds no gate
        'SOURCE = """\n@pytest.mark.gate\ndef test_g(gate_case):\n    pass\n"""\n\ndef test_x():\n    pass\n',
        "def test_x(pytester):\n    pytester.makepyfile('def test_g(gate_case): pass')\n",
        "def test_x():\n    text = f'{1} pytest.mark.gate'\n",
        "# like the gate_case fixture\ndef test_x():\n    pass\n",
        "def test_ragate_metrics_are_registered():\n    pass\n",
    ],
)
def test_a_module_whose_signs_are_only_in_strings_or_comments_is_not_imported(tmp_path, source):
    assert _ignored(tmp_path, source) is True


def test_a_module_that_does_not_tokenize_is_collected_so_its_error_shows(tmp_path):
    assert _ignored(tmp_path, 'X = """unterminated gate_case\n') is None


def test_other_runs_collect_as_pytest_does(tmp_path):
    plain = "def test_x():\n    pass\n"
    assert _ignored(tmp_path, plain, FakeConfig(markexpr="not gate")) is None
    assert _ignored(tmp_path, plain, FakeConfig(source=pytest.Config.ArgsSource.ARGS)) is None


class FakePluginManager:
    """Stands in for pytest's plugin manager: records what was unregistered."""

    def __init__(self) -> None:
        self.plugins = {"hypothesispytest": object()}
        self.unregistered: list[object] = []

    def get_plugin(self, name: str) -> object | None:
        return self.plugins.get(name)

    def unregister(self, plugin: object) -> None:
        self.unregistered.append(plugin)


class FakeItem:
    def __init__(self, gate: bool) -> None:
        self.gate = gate

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "gate" and self.gate else None


class FakeSession:
    def __init__(self, *gates: bool) -> None:
        self.items = [FakeItem(g) for g in gates]
        self.config = type("FakeSessionConfig", (), {"pluginmanager": FakePluginManager()})()


def test_hypothesis_plugin_is_dropped_only_from_a_gate_only_run_without_hypothesis(monkeypatch):
    import sys

    from gates.plugin import pytest_collection_finish

    monkeypatch.delitem(sys.modules, "hypothesis", raising=False)
    gates_only, mixed, empty = FakeSession(True, True), FakeSession(True, False), FakeSession()
    for session in (gates_only, mixed, empty):
        pytest_collection_finish(session)  # type: ignore[arg-type]
    manager = gates_only.config.pluginmanager
    assert manager.unregistered == [manager.plugins["hypothesispytest"]]
    assert mixed.config.pluginmanager.unregistered == [] and empty.config.pluginmanager.unregistered == []

    monkeypatch.setitem(sys.modules, "hypothesis", object())  # a collected module imported it
    used = FakeSession(True)
    pytest_collection_finish(used)  # type: ignore[arg-type]
    assert used.config.pluginmanager.unregistered == []
