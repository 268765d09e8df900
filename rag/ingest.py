"""Incremental ingest of a Markdown/text corpus into an embedded Chroma index.

A document is identified by its path under the corpus folder (without suffix) and
versioned by the SHA-256 of its text: an unchanged document is not embedded again, a
changed one is replaced, a removed one leaves the index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import RagConfig
from ragate_core.errors import UsageError

SUFFIXES = (".md", ".markdown", ".txt")


@dataclass(frozen=True)
class Document:
    """One corpus file."""

    doc_id: str
    path: Path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A piece of a document and where it starts in the document's text."""

    doc_id: str
    index: int
    start: int
    text: str

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.index}"


@dataclass(frozen=True)
class IngestStats:
    """What one ingest changed."""

    documents: int
    added: int
    updated: int
    unchanged: int
    removed: int
    chunks_embedded: int

    def summary(self) -> str:
        return (
            f"{self.documents} documents: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed "
            f"({self.chunks_embedded} chunks embedded)"
        )


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Read every Markdown/text file below ``corpus_dir`` (sorted, UTF-8, non-empty)."""
    if not corpus_dir.is_dir():
        raise UsageError(f"{corpus_dir}: corpus folder not found; pass --corpus DIR with .md or .txt files")
    docs = []
    for path in sorted(p for p in corpus_dir.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise UsageError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
        if not text.strip():
            raise UsageError(f"{path}: empty document; remove it or give it some text")
        doc_id = path.relative_to(corpus_dir).with_suffix("").as_posix()
        docs.append(Document(doc_id=doc_id, path=path, text=text))
    if not docs:
        raise UsageError(f"{corpus_dir}: no {', '.join(SUFFIXES)} files in the corpus folder")
    return docs


def corpus_fingerprint(corpus_dir: Path) -> str:
    """A hash of every document's id and content: the index version the answers came from."""
    digest = hashlib.sha256()
    for doc in load_corpus(corpus_dir):
        digest.update(f"{doc.doc_id}\0{doc.sha256}\n".encode())
    return digest.hexdigest()[:16]


def split_document(doc: Document, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split on Markdown structure first (headings, paragraphs, sentences)."""
    # Imported here: a warm gate run reads the corpus (corpus_fingerprint) but splits nothing.
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=["\n#", "\n\n", "\n", ". ", " ", ""],
        add_start_index=True,
    )
    pieces = splitter.create_documents([doc.text])
    # Fix (tests/test_chunking.py): LangChain's start_index is the first match after an
    # estimated offset, which lands on an earlier copy of a repeated passage ("refund.
    # refund.") and leaves text that no chunk's span covers; place the chunks consistently.
    texts = [p.page_content for p in pieces]
    starts = _chunk_starts(doc.text, texts, chunk_overlap) or [int(p.metadata["start_index"]) for p in pieces]
    return [
        Chunk(doc_id=doc.doc_id, index=i, start=start, text=text)
        for i, (start, text) in enumerate(zip(starts, texts))
    ]


def _chunk_starts(text: str, chunks: list[str], overlap: int) -> list[int] | None:
    """Where each chunk starts in ``text``, or None if no consistent placement exists.

    Chunks follow the text in order: each one starts at most ``overlap`` characters before
    the previous one ends, moves on from it (a later start or a later end: blank text at
    the edges is stripped) and leaves no non-blank text between them. The search is
    depth-first, earliest match first, and remembers dead ends; in real documents, where
    a chunk's text rarely occurs twice nearby, it never backtracks.
    """

    def first_non_blank(at: int) -> int:
        while at < len(text) and text[at].isspace():
            at += 1
        return at

    starts: list[int] = []
    resume = [0] * (len(chunks) + 1)  # where the next try of chunk i searches from
    dead: set[tuple[int, int]] = set()  # (chunk, previous chunk's start) with no placement
    while len(starts) < len(chunks):
        i = len(starts)
        prev_start, prev_end = (starts[-1], starts[-1] + len(chunks[i - 1])) if starts else (-1, 0)
        limit = first_non_blank(prev_end)
        found = -1
        if (i, prev_start) not in dead:
            p = text.find(chunks[i], max(resume[i], prev_start, prev_end - overlap, 0))
            while 0 <= p <= limit:
                end = p + len(chunks[i])
                moves_on = end >= prev_end and (p > prev_start or end > prev_end)
                if moves_on and (i + 1 < len(chunks) or first_non_blank(end) == len(text)):
                    found = p
                    break
                p = text.find(chunks[i], p + 1)
        if found >= 0:
            starts.append(found)
            resume[i] = found + 1
            resume[i + 1] = 0
            continue
        dead.add((i, prev_start))
        if not starts:
            return None
        starts.pop()  # try the previous chunk's next placement
    return starts


def open_store(config: RagConfig, embeddings: Any | None = None) -> Any:
    """The LangChain Chroma vector store over a persistent client in ``index_dir``."""
    import chromadb
    from chromadb.config import Settings
    from langchain_chroma import Chroma

    from ragate_core.embeddings import default_embeddings

    embeddings = embeddings or default_embeddings()
    index_dir = config.path(config.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    client = chromadb.PersistentClient(path=str(index_dir), settings=Settings(anonymized_telemetry=False))
    store = Chroma(
        client=client,
        collection_name=config.collection,
        embedding_function=embeddings,
        collection_metadata={"hnsw:space": "cosine", "embedding": embeddings.name},
    )
    if store._collection.metadata.get("embedding") != embeddings.name:
        # Vectors from other weights are not comparable: start the collection again.
        client.delete_collection(config.collection)
        store = Chroma(
            client=client,
            collection_name=config.collection,
            embedding_function=embeddings,
            collection_metadata={"hnsw:space": "cosine", "embedding": embeddings.name},
        )
    return store


def ingest(
    config: RagConfig,
    corpus_dir: Path | None = None,
    store: Any | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestStats:
    """Bring the index in line with the corpus, embedding only what changed."""
    corpus = load_corpus(corpus_dir or config.path(config.corpus_dir))
    store = store or open_store(config)
    collection = store._collection
    indexed: dict[str, str] = {}
    for meta in collection.get(include=["metadatas"])["metadatas"] or []:
        indexed[meta["doc_id"]] = meta["doc_version"]

    added = updated = unchanged = embedded = 0
    for n, doc in enumerate(corpus, start=1):
        previous = indexed.pop(doc.doc_id, None)
        # The chunking settings are part of a document's version: new settings, new chunks.
        version = f"{doc.sha256[:32]}:{config.chunk_size}:{config.chunk_overlap}"
        if previous == version:
            unchanged += 1
        else:
            if previous is None:
                added += 1
            else:
                updated += 1
                collection.delete(where={"doc_id": doc.doc_id})
            chunks = split_document(doc, config.chunk_size, config.chunk_overlap)
            store.add_texts(
                texts=[c.text for c in chunks],
                metadatas=[
                    {"doc_id": c.doc_id, "doc_version": version, "chunk": c.index, "start": c.start}
                    for c in chunks
                ],
                ids=[c.chunk_id for c in chunks],
            )
            embedded += len(chunks)
        if progress:
            progress(n, len(corpus))
    for doc_id in indexed:  # left over: no longer in the corpus
        collection.delete(where={"doc_id": doc_id})
    return IngestStats(
        documents=len(corpus),
        added=added,
        updated=updated,
        unchanged=unchanged,
        removed=len(indexed),
        chunks_embedded=embedded,
    )
