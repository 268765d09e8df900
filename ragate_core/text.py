"""Text helpers shared by the detectors (``ragate_core``) and the metrics (``gates``)."""

from __future__ import annotations

import re

_LIST_MARK = re.compile(r"^\s*(?:#+|[-*•]|\d+[.)])\s+")


def split_sentences(text: str, boundary: re.Pattern[str]) -> list[str]:
    """Split prose at ``boundary`` matches; Markdown headings and list items are their own
    sentences, their markers removed; empty pieces are dropped."""
    parts = []
    for piece in boundary.split(text):
        piece = _LIST_MARK.sub("", piece).strip()
        if piece:
            parts.append(piece)
    return parts
