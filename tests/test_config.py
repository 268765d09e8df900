"""RagConfig and load_config: defaults < pyproject [tool.ragate] < RAGATE_* environment < overrides."""

from pathlib import Path

import pytest

from rag.config import RagConfig, load_config
from ragate_core.errors import UsageError
from ragate_core.project import find_project_root, tool_table


@pytest.fixture(autouse=True)
def _no_ragate_env(monkeypatch):
    # The developer's shell may set RAGATE_* variables; these tests own the environment.
    import os

    for key in list(os.environ):
        if key.startswith("RAGATE_"):
            monkeypatch.delenv(key)


def write_pyproject(root: Path, body: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n\n' + body, encoding="utf-8")
    return path


def test_defaults_without_pyproject(tmp_path):
    config = load_config(tmp_path)
    assert config.project_root == tmp_path
    assert config.corpus_dir == Path("datasets/corpus")
    assert config.top_k == 3
    assert config.backend == "llama_cpp"
    assert config.model == "smollm2-135m-instruct"
    assert config.prompt == "answer-v1"


def test_pyproject_overrides_defaults(tmp_path):
    write_pyproject(
        tmp_path, '[tool.ragate]\ntop_k = 5\nprompt = "answer-completion-v1"\ncorpus_dir = "kb"\n'
    )
    config = load_config(tmp_path)
    assert config.top_k == 5
    assert config.prompt == "answer-completion-v1"
    assert config.corpus_dir == Path("kb")
    assert config.path(config.corpus_dir) == tmp_path / "kb"
    # Untouched fields keep their defaults.
    assert config.chunk_size == RagConfig().chunk_size


def test_environment_overrides_pyproject(tmp_path, monkeypatch):
    write_pyproject(tmp_path, "[tool.ragate]\ntop_k = 5\nmax_tokens = 40\n")
    monkeypatch.setenv("RAGATE_TOP_K", "7")
    monkeypatch.setenv("RAGATE_INDEX_DIR", str(tmp_path / "idx"))
    config = load_config(tmp_path)
    assert config.top_k == 7  # environment beats pyproject, and the string is coerced
    assert config.max_tokens == 40  # pyproject still applies where the environment is silent
    assert config.path(config.index_dir) == tmp_path / "idx"


def test_overrides_beat_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGATE_TOP_K", "7")
    assert load_config(tmp_path, top_k=2).top_k == 2


def test_unrelated_environment_variables_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGATE_GATE_ENV", "staging")  # belongs to the gate plugin, not the chain
    monkeypatch.setenv("RAGATEX_TOP_K", "9")
    assert load_config(tmp_path).top_k == 3


def test_nested_tables_belong_to_other_parts(tmp_path):
    write_pyproject(
        tmp_path, '[tool.ragate]\ntop_k = 4\n\n[tool.ragate.gates]\nchain = "rag.chain:build_chain"\n'
    )
    assert load_config(tmp_path).top_k == 4
    assert tool_table(tmp_path)["gates"] == {"chain": "rag.chain:build_chain"}


def test_unknown_pyproject_key_names_file_and_key(tmp_path):
    path = write_pyproject(tmp_path, "[tool.ragate]\ntop_kk = 4\n")
    with pytest.raises(UsageError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert "top_kk" in message
    assert str(path) in message


def test_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGATE_TOP_K", "many")
    with pytest.raises(UsageError, match=r"environment RAGATE_TOP_K: top_k: .*'many'"):
        load_config(tmp_path)


def test_out_of_range_value_is_rejected(tmp_path):
    write_pyproject(tmp_path, "[tool.ragate]\ntop_k = 0\n")
    with pytest.raises(UsageError, match="top_k"):
        load_config(tmp_path)


def test_unknown_backend_is_rejected(tmp_path):
    with pytest.raises(UsageError, match="backend"):
        load_config(tmp_path, backend="ollama")


def test_overlap_must_be_smaller_than_chunk_size(tmp_path):
    with pytest.raises(UsageError, match=r"chunk_overlap: .*smaller than chunk_size"):
        load_config(tmp_path, chunk_size=200, chunk_overlap=200)
    assert load_config(tmp_path, chunk_size=200, chunk_overlap=199).chunk_overlap == 199


def test_invalid_toml_names_the_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ragate\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"pyproject\.toml: not valid TOML"):
        load_config(tmp_path)


def test_config_is_frozen():
    config = RagConfig()
    with pytest.raises(ValueError):
        config.top_k = 9  # type: ignore[misc]


def test_find_project_root_walks_up_to_the_ragate_table(tmp_path):
    write_pyproject(tmp_path, "[tool.ragate]\ntop_k = 4\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    # A pyproject without [tool.ragate] on the way up is not the project root.
    write_pyproject(tmp_path / "a", "[tool.other]\nx = 1\n")
    assert find_project_root(nested) == tmp_path.resolve()


def test_load_config_finds_the_root_from_the_working_directory(tmp_path, monkeypatch):
    write_pyproject(tmp_path, "[tool.ragate]\ntop_k = 6\n")
    nested = tmp_path / "sub"
    nested.mkdir()
    monkeypatch.chdir(nested)
    config = load_config()
    assert config.project_root == tmp_path.resolve()
    assert config.top_k == 6


def test_the_repository_configuration_loads():
    root = Path(__file__).resolve().parents[1]
    config = load_config(root)
    assert config.path(config.corpus_dir).is_dir()


# --- chain_hash -------------------------------------------------------------------------


def test_chain_hash_is_stable_and_short(tmp_path):
    first = load_config(tmp_path).chain_hash()
    assert first == load_config(tmp_path).chain_hash()
    assert len(first) == 16
    int(first, 16)  # hexadecimal


@pytest.mark.parametrize(
    "field,value",
    [
        ("top_k", 5),
        ("prompt", "answer-completion-v1"),
        ("model", "gemma3-270m"),
        ("chunk_size", 500),
        ("temperature", 0.7),
        ("min_relevance", 0.5),
        ("max_tokens", 120),
    ],
)
def test_chain_hash_changes_with_what_changes_answers(tmp_path, field, value):
    assert load_config(tmp_path, **{field: value}).chain_hash() != load_config(tmp_path).chain_hash()


@pytest.mark.parametrize(
    "field,value",
    [
        ("index_dir", Path("/elsewhere/index")),
        ("cache_dir", Path("/elsewhere/cache")),
        ("openai_api_key_env", "MY_KEY"),
    ],
)
def test_chain_hash_ignores_where_state_lives(tmp_path, field, value):
    assert load_config(tmp_path, **{field: value}).chain_hash() == load_config(tmp_path).chain_hash()


def test_chain_hash_does_not_depend_on_the_checkout_folder(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    assert load_config(one).chain_hash() == load_config(two).chain_hash()


def test_chain_fields_are_json_ready_and_exclude_paths_of_state():
    fields = RagConfig().chain_fields()
    assert "project_root" not in fields and "index_dir" not in fields
    assert fields["top_k"] == 3
    assert fields["corpus_dir"] == "datasets/corpus"
