"""Versioned prompt templates, one YAML file each."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ragate_core.errors import UsageError

PROMPTS_DIR = Path(__file__).parent


class _PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    style: Literal["chat", "completion"]
    system: str = ""
    user: str


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt with ``{context}`` and ``{question}`` slots."""

    name: str
    version: str
    style: Literal["chat", "completion"]
    system: str
    user: str
    sha256: str

    def messages(self, context: str, question: str) -> list[dict[str, str]]:
        """Chat messages (for ``style: chat``) with the slots filled."""
        values = {"context": context, "question": question}
        filled = [("system", _fill(self.system, values)), ("user", _fill(self.user, values))]
        return [{"role": role, "content": text} for role, text in filled if text]

    def text(self, context: str, question: str) -> str:
        """One completion prompt (for ``style: completion``) with the slots filled."""
        return "\n\n".join(m["content"] for m in self.messages(context, question))


_SLOT = re.compile(r"\{(context|question)\}")


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass, so braces inside a context or a question are never read as slots.
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def load_prompt(name: str) -> PromptTemplate:
    """Load ``rag/prompts/<name>.yaml`` or a path to a YAML file."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml")))
        raise UsageError(f"prompt {name!r}: no file {path}; known prompts: {known}")
    raw = path.read_bytes()
    try:
        parsed = _PromptFile.model_validate(yaml.safe_load(raw.decode("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError, ValidationError) as exc:
        raise UsageError(f"{path}: not a valid prompt file: {exc}") from exc
    for slot in ("{context}", "{question}"):
        if slot not in parsed.system + parsed.user:
            raise UsageError(f"{path}: the template has no {slot} slot")
    return PromptTemplate(
        name=path.stem,
        version=parsed.version,
        style=parsed.style,
        system=parsed.system,
        user=parsed.user,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
