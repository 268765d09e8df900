"""A warm gate run loads nothing a cache hit does not need (issue 12, item 2).

With ``[tool.ragate.gates] chain_version`` declared, the engine keys the generation cache by
that version and builds the chain only on the first miss; a run whose answers and
judgments are all cached never imports the chain's module nor any model library. No timing
here: the speed is measured by ``benchmarks/bench_warm.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gates.cache import Cache
from gates.engine import GateEngine, declared_chain_version
from gates.profile import GateProfile
from ragate_core.errors import UsageError

QUESTIONS = {"qa-1": "How much is Pro?", "qa-2": "How long is the trial?"}
HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "presidio_analyzer",
    "spacy",
    "llama_cpp",
    "chromadb",
    "langchain_core",
    "nemoguardrails",
    "mlflow",
)

# The chain under test lives in its own module, as a team's would: the fake chain answers
# from a table, and its module records that it was imported and built.
CHAIN_MODULE = """
import json, os
IMPORTED = True
VERSION = {"model": os.environ.get("FAKE_MODEL", "m1"), "index": "corpus-1"}
ANSWERS = json.loads(os.environ["FAKE_ANSWERS"])


class FakeTableChain:
    version = VERSION

    def invoke(self, question):
        return {"answer": ANSWERS[question], "contexts": ["ctx"], "sources": ["doc"], "latency_ms": 5.0}


def build():
    with open(os.environ["FAKE_BUILT_LOG"], "a") as log:
        log.write("built\\n")
    return FakeTableChain()
"""
VERSION_MODULE = """
import os


def declared(root):
    return {"model": os.environ.get("FAKE_DECLARED_MODEL", "m1"), "index": "corpus-1"}
"""
RUNNER = """
import json, sys
from pathlib import Path

HEAVY = json.loads(sys.argv[3])

root = Path(sys.argv[1])
if sys.argv[2] == "fake-masker":  # the cold run: a fake masker (no presidio) fills the mask cache
    import gates.engine
    gates.engine._mask_now = lambda text, names, keep: text
from gates.cache import Cache
from gates.chain import load_chain_factory
from gates.engine import GateEngine, load_cases
from gates.profile import load_profile

profile = load_profile(str(root / "profile.yaml"), root)
cache = Cache(root / "cache" / "gates.sqlite")
cases = load_cases(profile, root, cache=cache)
spec = "fake_table_chain:build"
engine = GateEngine(profile, root, lambda: load_chain_factory(spec)(), cache, chain_spec=spec, cases=cases)
run = engine.run()
print(json.dumps({
    "passed": run.verdict.passed,
    "generated": run.stats.generated,
    "judgments": run.stats.judgments,
    "chain_version": run.chain_version,
    "loaded": sorted(m for m in HEAVY if m in sys.modules),
    "chain_module_imported": "fake_table_chain" in sys.modules,
}))
"""


def _project(tmp_path: Path, declare: bool = True) -> Path:
    (tmp_path / "fake_table_chain.py").write_text(CHAIN_MODULE, encoding="utf-8")
    (tmp_path / "fake_declared_version.py").write_text(VERSION_MODULE, encoding="utf-8")
    declared = 'chain_version = "fake_declared_version:declared"\n' if declare else ""
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.ragate]\n[tool.ragate.gates]\nchain = "fake_table_chain:build"\n{declared}', encoding="utf-8"
    )
    (tmp_path / "qa.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "question": q, "ground_truth": "x", "source_ids": ["d"], "tags": ["t"]})
            + "\n"
            for i, q in QUESTIONS.items()
        ),
        encoding="utf-8",
    )
    (tmp_path / "profile.yaml").write_text(
        "env: ci\ndatasets:\n  - name: golden\n    path: qa.jsonl\n"
        "metrics:\n  latency:\n    threshold: 1000\n    rules:\n      max_p95: 500\n"
        "  hit_rate:\n    threshold: 0.5\n    rules:\n      min_mean: 0.5\n",
        encoding="utf-8",
    )
    return tmp_path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    root = Path(__file__).resolve().parents[1]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)]),
        "FAKE_ANSWERS": json.dumps({q: f"answer to {i}" for i, q in QUESTIONS.items()}),
        "FAKE_BUILT_LOG": str(tmp_path / "built.log"),
        **extra,
    }


def _run(tmp_path: Path, mode: str, **extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path), mode, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **extra),
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _builds(tmp_path: Path) -> int:
    log = tmp_path / "built.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_an_all_hit_run_imports_neither_the_chain_nor_any_model_library(tmp_path: Path) -> None:
    _project(tmp_path)
    cold = _run(tmp_path, "fake-masker")
    assert cold["generated"] == 2 and _builds(tmp_path) == 1
    assert cold["chain_version"] == {"model": "m1", "index": "corpus-1", "factory": "fake_table_chain:build"}

    warm = _run(tmp_path, "real-masker")  # masks, answers and judgments all come from the cache
    # (judgments are not asserted: their keys hash gates/metrics/text.py, which may change
    # between the two runs in a shared working tree; re-scoring these exact metrics loads nothing)
    assert warm["generated"] == 0
    assert warm["passed"] == cold["passed"] and warm["chain_version"] == cold["chain_version"]
    assert _builds(tmp_path) == 1, "the chain was built on an all-hit run"
    assert warm["chain_module_imported"] is False
    assert warm["loaded"] == [], f"an all-hit run loaded {warm['loaded']}"


def test_a_declared_version_that_differs_from_the_chain_s_is_a_usage_error(tmp_path: Path) -> None:
    _project(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path), "fake-masker", json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        env=_env(tmp_path, FAKE_DECLARED_MODEL="m2"),  # declared m2, the chain says m1
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode != 0
    assert "UsageError" in out.stderr and "chain_version" in out.stderr and "differs" in out.stderr
    assert "in model" in out.stderr


def test_without_a_declared_version_the_chain_is_built_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gates.engine._mask_now", lambda text, names, keep: text)  # a fake masker
    root = _project(tmp_path, declare=False)
    assert declared_chain_version(root, "fake_table_chain:build") is None
    from gates.profile import load_profile

    prof: GateProfile = load_profile(str(root / "profile.yaml"), root)
    built = []

    class Chain:
        def __init__(self) -> None:
            self.version = {"model": "m1"}

        def invoke(self, question: str) -> dict:
            return {"answer": "a", "contexts": ["c"], "sources": ["d"], "latency_ms": 1.0}

    def factory() -> Chain:
        built.append(1)
        return Chain()

    cache = Cache(tmp_path / "c.sqlite")
    GateEngine(prof, root, factory, cache).run()
    GateEngine(prof, root, factory, cache).run()
    assert len(built) == 2  # without a declared version the version needs the chain


def test_a_declared_version_that_cannot_be_imported_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ragate]\n[tool.ragate.gates]\nchain_version = "no_such_module_here:v"\n', encoding="utf-8"
    )
    with pytest.raises(UsageError, match=r"\[tool.ragate.gates\] chain_version: cannot import"):
        declared_chain_version(tmp_path, None)
