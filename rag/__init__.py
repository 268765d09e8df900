"""ragate's system under test: a LangChain RAG chain over Chroma with a local LLM."""

from __future__ import annotations

__version__ = "0.1.0"
