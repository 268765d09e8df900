"""The ``ragate`` command line, run in-process on a temporary project (and once as the installed script)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rag.chain
from gates.cli import main
from rag.llm import Generation

REPO = Path(__file__).resolve().parents[1]
DOCS = ("refund-policy", "api-rate-limits", "two-factor-auth")
ANSWER_KEYS = {
    "id",
    "question",
    "answer",
    "contexts",
    "sources",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
}


class FakeGenerator:
    """Stands in for the model: the CLI's plumbing is under test here, not the model."""

    name = "fake-model"
    fingerprint = "fake"

    def __init__(self, fail_on: str | None = None):
        self.questions: list[str] = []
        self.fail_on = fail_on

    def generate(self, prompt, context, question, seed=None, temperature=None):
        self.questions.append(question)
        if self.fail_on and self.fail_on in question:
            raise RuntimeError("the model crashed")
        first = context.split("] ", 1)[1].split("\n")[0]
        return Generation(f"From the docs: {first}", 50, 8)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A ragate project of its own: pyproject [tool.ragate] pointing every folder into tmp_path."""
    for key in list(os.environ):
        if key.startswith("RAGATE_"):
            monkeypatch.delenv(key)
    (tmp_path / "pyproject.toml").write_text(
        # No rails: the command line's plumbing is under test here (rag.guardrails has its own tests).
        '[project]\nname = "helpdesk"\n\n[tool.ragate]\ncorpus_dir = "kb"\n'
        'index_dir = "state/chroma"\ncache_dir = "state/cache"\nguardrails = false\n',
        encoding="utf-8",
    )
    (tmp_path / "kb").mkdir()
    for name in DOCS:
        shutil.copy(REPO / "datasets" / "corpus" / f"{name}.md", tmp_path / "kb")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def generator(monkeypatch):
    fake = FakeGenerator()
    monkeypatch.setattr(rag.chain, "make_generator", lambda config: fake)
    return fake


@pytest.fixture
def ingested(project, capsys):
    assert main(["ingest"]) == 0
    capsys.readouterr()
    return project


def write_jsonl(path: Path, *rows) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def usage_error(capsys, argv, command: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"ragate {command}: error: ")
    return captured.err


# --- help ---------------------------------------------------------------------------------


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("ingest", "ask", "score", "calibrate"):
        assert command in out


@pytest.mark.parametrize(
    "command,option",
    [("ingest", "--corpus"), ("ask", "--input"), ("score", "--metrics"), ("calibrate", "--data")],
)
def test_every_command_has_help(capsys, command, option):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ragate {command}")
    assert option in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_the_installed_console_script_runs():
    script = Path(sys.executable).parent / "ragate"
    assert script.is_file(), "the console script `ragate` is not installed"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ragate")
    bad = subprocess.run(
        [str(script), "ask"], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )
    assert bad.returncode == 2
    assert "give either a QUESTION or --input" in bad.stderr


# --- ingest -------------------------------------------------------------------------------


def test_ingest_is_incremental(project, capsys):
    assert main(["ingest"]) == 0
    out = capsys.readouterr().out
    assert f"ingested {project / 'kb'}: 3 documents: 3 added, 0 updated, 0 unchanged, 0 removed" in out
    assert (project / "state" / "chroma").is_dir()  # the project's index_dir, not the repository's

    (project / "kb" / "two-factor-auth.md").unlink()
    assert main(["ingest"]) == 0
    out = capsys.readouterr().out
    assert "2 documents: 0 added, 0 updated, 2 unchanged, 1 removed (0 chunks embedded)" in out


def test_ingest_another_corpus(project, capsys):
    other = project / "other"
    other.mkdir()
    (other / "faq.txt").write_text("Tasklane has a dark mode.", encoding="utf-8")
    assert main(["ingest", "--corpus", "other"]) == 0
    assert "1 documents: 1 added" in capsys.readouterr().out


def test_ingest_missing_corpus_folder(project, capsys):
    err = usage_error(capsys, ["ingest", "--corpus", "nowhere"], "ingest")
    assert "nowhere: corpus folder not found" in err


def test_ingest_empty_document(project, capsys):
    (project / "kb" / "draft.md").write_text("\n\n", encoding="utf-8")
    err = usage_error(capsys, ["ingest"], "ingest")
    assert f"{project / 'kb' / 'draft.md'}: empty document" in err
    # The corpus is checked before anything is embedded: the index holds nothing.
    from rag.config import load_config
    from rag.ingest import open_store

    assert open_store(load_config())._collection.count() == 0


def test_ingest_non_utf8_document(project, capsys):
    (project / "kb" / "legacy.md").write_bytes(b"# Legacy\n\nPrix: 5\x80\n")
    err = usage_error(capsys, ["ingest"], "ingest")
    assert f"{project / 'kb' / 'legacy.md'}:3: not UTF-8" in err


def test_bad_project_configuration(project, capsys):
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + "top_k = 0\nchunk_sise = 5\n", encoding="utf-8"
    )
    err = usage_error(capsys, ["ingest"], "ingest")
    assert "top_k" in err and "chunk_sise" in err and str(pyproject) in err


# --- ask ----------------------------------------------------------------------------------


def test_ask_one_question(ingested, generator, capsys):
    assert main(["ask", "How long does a refund take to arrive?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("From the docs: ")
    assert "sources: refund-policy" in out
    assert generator.questions == ["How long does a refund take to arrive?"]


def test_ask_before_ingest_says_what_to_do(project, generator, capsys):
    err = usage_error(capsys, ["ask", "How long does a refund take to arrive?"], "ask")
    assert f"{project / 'state' / 'chroma'}: the index is empty; run `ragate ingest` first" in err
    assert generator.questions == []


def test_ask_off_topic_abstains(ingested, generator, capsys):
    assert main(["ask", "What is a good recipe for banana bread with walnuts?"]) == 0
    assert capsys.readouterr().out.strip() == rag.chain.ABSTAIN
    assert generator.questions == []


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_empty_question(project, generator, capsys, question):
    with pytest.raises(SystemExit) as info:
        main(["ask", question])
    assert info.value.code == 2
    assert "the question is empty" in capsys.readouterr().err
    assert generator.questions == []


def test_ask_with_neither_question_nor_input(project, generator, capsys):
    err = usage_error(capsys, ["ask"], "ask")
    assert "give either a QUESTION or --input FILE.jsonl" in err


def test_ask_with_both_question_and_input(project, generator, capsys):
    questions = write_jsonl(project / "q.jsonl", {"id": "1", "question": "Refunds?"})
    err = usage_error(capsys, ["ask", "Refunds?", "--input", str(questions), "--output", "a.jsonl"], "ask")
    assert "give either a QUESTION or --input FILE.jsonl" in err
    assert not (project / "a.jsonl").exists()
    assert generator.questions == []


def test_ask_input_needs_output(project, generator, capsys):
    questions = write_jsonl(project / "q.jsonl", {"id": "1", "question": "Refunds?"})
    assert "--output FILE.jsonl is required" in usage_error(capsys, ["ask", "--input", str(questions)], "ask")


def test_ask_output_needs_input(project, generator, capsys):
    assert "only valid with --input" in usage_error(capsys, ["ask", "Refunds?", "--output", "a.jsonl"], "ask")
    assert not (project / "a.jsonl").exists()


def test_ask_batch(ingested, generator, capsys):
    questions = write_jsonl(
        ingested / "q.jsonl",
        {"id": "r1", "question": "How long does a refund take to arrive?"},
        {"id": "r2", "question": "What is the API rate limit on the Pro plan?", "tags": ["api"]},
        # Golden rows are accepted as they are.
        {
            "id": "r3",
            "question": "Banana bread recipe with walnuts?",
            "ground_truth": "n/a",
            "source_ids": [],
        },
    )
    assert main(["ask", "--input", str(questions), "--output", "out/answers.jsonl"]) == 0
    captured = capsys.readouterr()
    assert "wrote 3 answers to out/answers.jsonl" in captured.err
    rows = [json.loads(line) for line in (ingested / "out" / "answers.jsonl").read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["r1", "r2", "r3"]
    for row in rows:
        assert set(row) >= ANSWER_KEYS
        assert isinstance(row["contexts"], list) and all(isinstance(c, str) for c in row["contexts"])
        assert isinstance(row["latency_ms"], float) and row["latency_ms"] > 0
    assert rows[0]["sources"][0] == "refund-policy" and rows[0]["prompt_tokens"] == 50
    assert rows[1]["sources"][0] == "api-rate-limits"
    assert (
        rows[2]["answer"] == rag.chain.ABSTAIN and rows[2]["contexts"] == [] and rows[2]["prompt_tokens"] == 0
    )
    assert generator.questions == [rows[0]["question"], rows[1]["question"]]


def test_ask_batch_keeps_the_answers_when_one_question_fails(ingested, generator, capsys):
    # Found by a new-user run: one question's failure (a rail's timeout under load) killed
    # the batch and wrote nothing.
    generator.fail_on = "rate limit"
    questions = write_jsonl(
        ingested / "q.jsonl",
        {"id": "r1", "question": "How long does a refund take to arrive?"},
        {"id": "r2", "question": "What is the API rate limit on the Pro plan?"},
    )
    assert main(["ask", "--input", str(questions), "--output", "answers.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "wrote 1 answers to answers.jsonl" in err
    assert "1 of 2 questions failed" in err and "r2: RuntimeError: the model crashed" in err
    rows = [json.loads(line) for line in (ingested / "answers.jsonl").read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["r1"]


@pytest.mark.parametrize(
    "bad_line,problem",
    [
        ('{"id": "2", "question": "Refunds?"', r"q\.jsonl:2: not valid JSON"),
        ('{"id": "2", "qestion": "Refunds?"}', r"q\.jsonl:2: .*unknown field 'qestion'"),
        ('{"id": "2", "question": "  "}', r"q\.jsonl:2: field 'question'"),
        ('{"id": "1", "question": "Again?"}', r"q\.jsonl:2: duplicate id '1'"),
        ('"just a string"', r"q\.jsonl:2: expected a JSON object"),
    ],
)
def test_ask_batch_bad_input_writes_nothing(project, generator, capsys, bad_line, problem):
    questions = write_jsonl(project / "q.jsonl", {"id": "1", "question": "Refunds?"}, bad_line)
    err = usage_error(capsys, ["ask", "--input", str(questions), "--output", "answers.jsonl"], "ask")
    assert re.search(problem, err), err
    assert not (project / "answers.jsonl").exists()
    assert generator.questions == []  # rejected before any model call


def test_ask_batch_missing_input_file(project, capsys):
    with pytest.raises(SystemExit) as info:
        main(["ask", "--input", "absent.jsonl", "--output", "answers.jsonl"])
    assert info.value.code == 2
    assert "absent.jsonl: no such file" in capsys.readouterr().err


# --- score --------------------------------------------------------------------------------


def test_score_answers(project, capsys):
    context = "A refund usually reaches your account within 5 to 10 business days."
    answers = write_jsonl(
        project / "answers.jsonl",
        {
            "id": "good",
            "question": "How long do refunds take?",
            "answer": "Within 5 to 10 business days.",
            "contexts": [context],
        },
        {
            "id": "bad",
            "question": "How long do refunds take?",
            "answer": "Refunds arrive in 45 days by cheque.",
            "contexts": [context],
            "sources": ["refund-policy"],
            "latency_ms": 12.5,
        },
    )
    assert (
        main(["score", "--metrics", "faithfulness", "--input", str(answers), "--output", "scored.jsonl"]) == 0
    )
    assert "scored 2 rows with faithfulness -> scored.jsonl (0 unscored)" in capsys.readouterr().err
    rows = {r["id"]: r for r in map(json.loads, (project / "scored.jsonl").read_text("utf-8").splitlines())}
    assert rows["good"]["scores"]["faithfulness"] > 0.5 > rows["bad"]["scores"]["faithfulness"]
    assert rows["bad"]["reasons"]["faithfulness"]
    assert rows["bad"]["sources"] == ["refund-policy"]  # input fields are kept


def test_score_reads_ask_output(ingested, generator, capsys):
    questions = write_jsonl(
        ingested / "q.jsonl", {"id": "1", "question": "How long does a refund take to arrive?"}
    )
    assert main(["ask", "--input", str(questions), "--output", "answers.jsonl"]) == 0
    assert (
        main(["score", "--metrics", "faithfulness", "--input", "answers.jsonl", "--output", "scored.jsonl"])
        == 0
    )
    (row,) = map(json.loads, (ingested / "scored.jsonl").read_text("utf-8").splitlines())
    assert 0.0 <= row["scores"]["faithfulness"] <= 1.0


def test_score_unknown_metric(project, capsys):
    answers = write_jsonl(project / "a.jsonl", {"id": "1", "question": "q?", "answer": "a", "contexts": []})
    with pytest.raises(SystemExit) as info:
        main(["score", "--metrics", "faithfulness,vibes", "--input", str(answers), "--output", "s.jsonl"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown metric(s) vibes; choose from" in err and "faithfulness" in err
    assert not (project / "s.jsonl").exists()


def test_score_bad_input_writes_nothing(project, capsys):
    answers = write_jsonl(
        project / "a.jsonl",
        {"id": "1", "question": "q?", "answer": "a", "contexts": []},
        {"id": "2", "question": "q?", "answer": "a", "contexts": "not a list"},
    )
    err = usage_error(
        capsys,
        ["score", "--metrics", "faithfulness", "--input", str(answers), "--output", "s.jsonl"],
        "score",
    )
    assert "a.jsonl:2: field 'contexts'" in err
    assert not (project / "s.jsonl").exists()


def test_ctrl_c_stops_a_command_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    import gates.cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(gates.cli, "cmd_score", interrupted)
    source = tmp_path / "in.jsonl"
    source.write_text("")
    code = gates.cli.main(["score", "--input", str(source), "--output", str(tmp_path / "o.jsonl")])
    assert code == 130
    err = capsys.readouterr().err
    assert err.strip() == "ragate score: interrupted" and "Traceback" not in err
