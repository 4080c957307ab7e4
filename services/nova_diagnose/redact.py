"""Hide secrets: the literal contents of the secret files, and anything shaped like a key."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

MARK = "[REDACTED]"
MIN_LITERAL = 4  # shorter file contents are not redacted literally (they would shred the text)
MAX_FILE_BYTES = 64 * 1024

_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),  # OpenAI-style and LiteLLM keys
    re.compile(r"\bAIza[0-9A-Za-z_\-]{10,}"),  # Google API keys
    re.compile(r"\bhf_[A-Za-z0-9]{6,}"),  # Hugging Face tokens
    re.compile(r"\blsv2_[A-Za-z0-9_]{6,}"),  # LangSmith keys
)
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{4,}")
_ASSIGNED = re.compile(
    r"(?i)((?:api[_-]?key|master[_-]?key|secret|password|passwd|token)[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"',}]+)"
)


def _assigned(match: re.Match[str]) -> str:
    value = match.group(2)
    if value.startswith(("os.environ/", MARK)) or value in ("null", "None", "true", "false"):
        return match.group(0)
    return match.group(1) + MARK


class Redactor:
    def __init__(self, literals: Iterable[str] = ()) -> None:
        unique = {s for s in literals if len(s) >= MIN_LITERAL}
        self.literals = sorted(unique, key=len, reverse=True)
        self.unreadable: list[str] = []  # secret paths that could not be read

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path]) -> Redactor:
        literals: list[str] = []
        unreadable: list[str] = []
        for top in dirs:
            if not top.exists():
                continue
            for path in _files(top, unreadable):
                try:
                    data = path.read_bytes()[:MAX_FILE_BYTES]
                except OSError:
                    unreadable.append(str(path))
                    continue
                text = data.decode("utf-8", errors="ignore")
                literals.append(text.strip())
                literals.extend(line.strip() for line in text.splitlines())
        redactor = cls(literals)
        redactor.unreadable = unreadable
        return redactor

    def redact(self, text: str) -> str:
        for literal in self.literals:
            text = text.replace(literal, MARK)
        for shape in _SHAPES:
            text = shape.sub(MARK, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
        return _ASSIGNED.sub(_assigned, text)


def _files(top: Path, unreadable: list[str]) -> list[Path]:
    found: list[Path] = []

    def onerror(exc: OSError) -> None:
        unreadable.append(exc.filename or str(top))

    for root, _dirs, names in os.walk(top, onerror=onerror):
        found.extend(Path(root) / name for name in names)
    return found
