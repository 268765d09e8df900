"""Incremental ingest into a real Chroma index with real MiniLM embeddings, and retrieval."""

import json
from pathlib import Path

import pytest

from rag.config import load_config
from rag.ingest import corpus_fingerprint, ingest, load_corpus, open_store, split_document
from ragate_core.errors import UsageError

REPO = Path(__file__).resolve().parents[1]

DOCS = {
    "refunds": "# Refunds\n\nA refund takes 5 to 10 business days.\n\nRefunds go to the original card.\n",
    "seats": "# Seats\n\n"
    + " ".join(f"Seat rule {i}: an Owner can add seats on the Billing page." for i in range(8)),
    "sso": "# Single sign-on\n\nSAML single sign-on is part of the Business plan.\n",
}


class CountingEmbeddings:
    """The real embedder, counting every text it embeds for the index."""

    def __init__(self):
        from ragate_core.embeddings import default_embeddings

        self._inner = default_embeddings()
        self.name = self._inner.name
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return self._inner.embed_documents(texts)

    def embed_query(self, text):
        return self._inner.embed_query(text)

    def take(self) -> list[str]:
        out, self.embedded = self.embedded, []
        return out


@pytest.fixture(scope="module")
def embedder():
    return CountingEmbeddings()


@pytest.fixture
def project(tmp_path, embedder, monkeypatch):
    for key in ("RAGATE_CHUNK_SIZE", "RAGATE_CHUNK_OVERLAP", "RAGATE_COLLECTION"):
        monkeypatch.delenv(key, raising=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / f"{name}.md").write_text(text, encoding="utf-8")
    config = load_config(
        tmp_path, corpus_dir=corpus, index_dir=tmp_path / "chroma", chunk_size=120, chunk_overlap=20
    )
    store = open_store(config, embeddings=embedder)
    embedder.take()
    return config, store, corpus


def indexed(store) -> dict[str, dict]:
    got = store._collection.get(include=["metadatas", "documents"])
    return {i: {**m, "text": d} for i, m, d in zip(got["ids"], got["metadatas"], got["documents"])}


def expected_chunks(config, corpus: Path) -> dict[str, str]:
    return {
        c.chunk_id: c.text
        for doc in load_corpus(corpus)
        for c in split_document(doc, config.chunk_size, config.chunk_overlap)
    }


def test_first_ingest_embeds_every_chunk(project, embedder):
    config, store, corpus = project
    stats = ingest(config, store=store)
    chunks = expected_chunks(config, corpus)
    assert len(chunks) > len(DOCS)  # "seats" needs several chunks at this size
    assert (stats.documents, stats.added, stats.updated, stats.unchanged, stats.removed) == (3, 3, 0, 0, 0)
    assert stats.chunks_embedded == len(chunks)
    assert sorted(embedder.take()) == sorted(chunks.values())
    index = indexed(store)
    assert {i: v["text"] for i, v in index.items()} == chunks
    assert {v["doc_id"] for v in index.values()} == set(DOCS)
    assert "3 documents: 3 added, 0 updated, 0 unchanged, 0 removed" in stats.summary()


def test_unchanged_documents_are_not_embedded_again(project, embedder):
    config, store, _ = project
    ingest(config, store=store)
    embedder.take()
    before = indexed(store)
    stats = ingest(config, store=store)
    assert (stats.unchanged, stats.added, stats.updated, stats.removed, stats.chunks_embedded) == (
        3,
        0,
        0,
        0,
        0,
    )
    assert embedder.take() == []
    assert indexed(store) == before


def test_a_changed_document_is_replaced(project, embedder):
    config, store, corpus = project
    ingest(config, store=store)
    embedder.take()
    # Shorter than before: its surplus old chunks must go too.
    (corpus / "seats.md").write_text("# Seats\n\nOnly the Owner adds seats.\n", encoding="utf-8")
    stats = ingest(config, store=store)
    assert (stats.updated, stats.unchanged, stats.added, stats.chunks_embedded) == (1, 2, 0, 1)
    assert embedder.take() == ["# Seats\n\nOnly the Owner adds seats."]
    index = indexed(store)
    seats = {i: v["text"] for i, v in index.items() if v["doc_id"] == "seats"}
    assert seats == {"seats#0": "# Seats\n\nOnly the Owner adds seats."}
    assert {i: v["text"] for i, v in index.items()} == expected_chunks(config, corpus)


def test_a_removed_document_leaves_the_index(project, embedder):
    config, store, corpus = project
    ingest(config, store=store)
    embedder.take()
    (corpus / "sso.md").unlink()
    stats = ingest(config, store=store)
    assert (stats.documents, stats.removed, stats.unchanged, stats.chunks_embedded) == (2, 1, 2, 0)
    assert embedder.take() == []
    assert "sso" not in {v["doc_id"] for v in indexed(store).values()}
    hits = store.similarity_search("Which plan includes SAML single sign-on?", k=10)
    assert all(h.metadata["doc_id"] != "sso" for h in hits)


def test_a_new_document_is_added_alone(project, embedder):
    config, store, corpus = project
    ingest(config, store=store)
    embedder.take()
    sub = corpus / "api"
    sub.mkdir()
    (sub / "limits.txt").write_text("The API allows 600 requests per minute.", encoding="utf-8")
    stats = ingest(config, store=store)
    assert (stats.added, stats.unchanged, stats.chunks_embedded) == (1, 3, 1)
    assert embedder.take() == ["The API allows 600 requests per minute."]
    assert indexed(store)["api/limits#0"]["doc_id"] == "api/limits"


def test_new_chunk_settings_re_embed_everything(project, embedder):
    config, store, corpus = project
    ingest(config, store=store)
    embedder.take()
    wider = config.model_copy(update={"chunk_size": 400, "chunk_overlap": 0})
    stats = ingest(wider, store=store)
    assert stats.updated == 3
    assert {i: v["text"] for i, v in indexed(store).items()} == expected_chunks(wider, corpus)
    assert len(embedder.take()) == stats.chunks_embedded


def test_the_index_persists_across_clients(project, embedder):
    config, store, _ = project
    ingest(config, store=store)
    embedder.take()
    reopened = open_store(config, embeddings=embedder)
    assert reopened._collection.count() == store._collection.count()
    assert ingest(config, store=reopened).unchanged == 3
    assert embedder.take() == []


def test_a_bad_corpus_leaves_the_index_untouched(project, embedder):
    config, store, corpus = project
    ingest(config, store=store)
    before = indexed(store)
    embedder.take()
    (corpus / "refunds.md").write_text("# Refunds\n\nNew text.\n", encoding="utf-8")
    (corpus / "broken.md").write_bytes(b"# Broken\n\ncaf\xe9\n")
    with pytest.raises(UsageError, match=r"broken\.md:3: not UTF-8"):
        ingest(config, store=store)
    assert embedder.take() == []
    assert indexed(store) == before


def test_progress_reports_every_document(project):
    config, store, _ = project
    calls = []
    ingest(config, store=store, progress=lambda n, total: calls.append((n, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_index_built_with_other_weights_is_rebuilt(project, embedder):
    config, store, _ = project
    ingest(config, store=store)
    assert store._collection.count() > 0

    class OtherWeights(CountingEmbeddings):
        def __init__(self):
            super().__init__()
            self.name = "other-model-123"

    other = open_store(config, embeddings=OtherWeights())
    assert other._collection.count() == 0
    assert other._collection.metadata["embedding"] == "other-model-123"


# --- the corpus -------------------------------------------------------------------------


def test_load_corpus_ids_suffixes_and_order(tmp_path):
    (tmp_path / "b.md").write_text("B", encoding="utf-8")
    (tmp_path / "a.txt").write_text("A", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.markdown").write_text("C", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.json").write_text("{}", encoding="utf-8")
    docs = load_corpus(tmp_path)
    assert [(d.doc_id, d.text) for d in docs] == [("a", "A"), ("b", "B"), ("sub/c", "C")]


def test_missing_corpus_folder(tmp_path):
    with pytest.raises(UsageError, match=r"nowhere: corpus folder not found"):
        load_corpus(tmp_path / "nowhere")


@pytest.mark.parametrize("content", [b"", b"  \n\n\t"])
def test_empty_document_is_named(tmp_path, content):
    (tmp_path / "good.md").write_text("Text.", encoding="utf-8")
    (tmp_path / "empty.md").write_bytes(content)
    with pytest.raises(UsageError, match=r"empty\.md: empty document"):
        load_corpus(tmp_path)


def test_non_utf8_document_names_file_and_line(tmp_path):
    (tmp_path / "latin1.md").write_bytes("# Titre\n\nLine two\nCafé crème\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin1\.md:4: not UTF-8"):
        load_corpus(tmp_path)


def test_folder_without_documents(tmp_path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(UsageError, match=r"no \.md, \.markdown, \.txt files"):
        load_corpus(tmp_path)


def test_corpus_fingerprint_follows_content_and_names(tmp_path):
    (tmp_path / "a.md").write_text("Alpha", encoding="utf-8")
    (tmp_path / "b.md").write_text("Beta", encoding="utf-8")
    first = corpus_fingerprint(tmp_path)
    assert first == corpus_fingerprint(tmp_path)
    (tmp_path / "a.md").write_text("Alpha", encoding="utf-8")  # rewritten, same content
    assert corpus_fingerprint(tmp_path) == first
    (tmp_path / "a.md").write_text("Alpha!", encoding="utf-8")
    changed = corpus_fingerprint(tmp_path)
    assert changed != first
    (tmp_path / "a.md").rename(tmp_path / "c.md")
    assert corpus_fingerprint(tmp_path) not in (first, changed)


# --- retrieval on the real corpus -------------------------------------------------------


def _answerable_golden():
    rows = [json.loads(line) for line in (REPO / "datasets/golden/qa.jsonl").read_text("utf-8").splitlines()]
    return [r for r in rows if r["source_ids"]]


@pytest.mark.parametrize(
    "question,doc_id",
    [
        ("How long does a refund take to arrive?", "refund-policy"),
        ("How many API requests can I make per minute?", "api-rate-limits"),
        ("How do I turn on two-factor authentication?", "two-factor-auth"),
        ("Which identity providers work with SAML single sign-on?", "sso-saml"),
    ],
)
def test_retrieval_finds_the_right_document(corpus_index, question, doc_id):
    _, store = corpus_index
    hits = store.similarity_search(question, k=3)
    assert hits[0].metadata["doc_id"] == doc_id, [h.metadata["doc_id"] for h in hits]


def test_retrieval_recall_on_the_golden_set(corpus_index):
    config, store = corpus_index
    cases = _answerable_golden()
    found = 0
    misses = []
    for case in cases:
        hits = store.similarity_search(case["question"], k=config.top_k)
        if {h.metadata["doc_id"] for h in hits} & set(case["source_ids"]):
            found += 1
        else:
            misses.append(case["id"])
    recall = found / len(cases)
    # Measured 0.98 (103 of 105) with all-MiniLM-L6-v2, chunks of 700/100, top 3; well below
    # means a broken index or splitter.
    assert recall >= 0.90, f"recall@{config.top_k} {recall:.2f}; missed {misses}"


def test_the_session_index_holds_the_whole_corpus(corpus_index):
    config, store = corpus_index
    docs = load_corpus(config.path(config.corpus_dir))
    n_chunks = sum(len(split_document(d, config.chunk_size, config.chunk_overlap)) for d in docs)
    assert store._collection.count() == n_chunks
