"""The ``monitor:`` section of a gate profile is validated like the rest of it: every
problem is a usage error naming the file and the YAML key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.profile import load_profile
from ragate_core.errors import UsageError

BASE = """\
env: prod
datasets:
  - name: golden
    path: qa.jsonl
metrics:
  faithfulness: {threshold: 0.5}
"""


def _profile(tmp_path: Path, monitor: str) -> Path:
    (tmp_path / "qa.jsonl").write_text("", encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(BASE + monitor, encoding="utf-8")
    return path


def test_a_valid_section_loads_with_its_defaults(tmp_path: Path) -> None:
    path = _profile(tmp_path, "monitor:\n  metrics:\n    faithfulness: {}\n    latency: {max_drop: 0.3}\n")
    monitor = load_profile(str(path), tmp_path).monitor
    assert monitor is not None and monitor.since == "1d" and monitor.sample is None
    assert monitor.metrics["faithfulness"].max_drop == 0.05
    assert monitor.metrics["latency"].max_drop == 0.3


def test_the_shipped_prod_profile_has_a_monitor_section() -> None:
    root = Path(__file__).resolve().parents[1]
    monitor = load_profile("prod", root).monitor
    assert monitor is not None and {"faithfulness", "toxicity", "latency"} <= set(monitor.metrics)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "monitor:\n  metrics:\n    faithfulness: {max_dorp: 0.1}\n",
            "monitor.metrics.faithfulness.max_dorp: unknown key (did you mean 'max_drop'?)",
        ),
        ("monitor:\n  window: 1d\n  metrics:\n    faithfulness: {}\n", "monitor.window: unknown key"),
        (
            "monitor:\n  metrics:\n    faithfulness: {max_drop: -0.1}\n",
            "monitor.metrics.faithfulness.max_drop",
        ),
        (
            "monitor:\n  metrics:\n    faithfulness: {max_failing_share: 1.5}\n",
            "monitor.metrics.faithfulness.max_failing_share",
        ),
        (
            "monitor:\n  metrics:\n    faithfulness: {threshold: 7}\n",
            "monitor.metrics.faithfulness.threshold: 7.0 is outside [0, 1]",
        ),
        (
            "monitor:\n  metrics:\n    latency: {threshold: -1}\n",
            "monitor.metrics.latency.threshold: -1.0 is negative",
        ),
        ("monitor:\n  metrics:\n    faithfulnes: {}\n", "monitor.metrics.faithfulnes: unknown metric"),
        (
            "monitor:\n  since: 2w\n  metrics:\n    faithfulness: {}\n",
            "monitor.since: Value error, give a positive duration",
        ),
        ("monitor:\n  sample: 0\n  metrics:\n    faithfulness: {}\n", "monitor.sample"),
        ("monitor:\n  metrics: {}\n", "monitor.metrics"),
        ("monitor:\n  metrics:\n    cost: {}\n", "monitor.metrics.cost: needs a pricing: section"),
    ],
)
def test_bad_monitor_rules_name_the_key(tmp_path: Path, section: str, message: str) -> None:
    path = _profile(tmp_path, section)
    with pytest.raises(UsageError) as info:
        load_profile(str(path), tmp_path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
