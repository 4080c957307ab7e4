"""What the commands take and print (one JSON line on stdout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .diskspace import DEFAULT_RESERVE_BYTES
from .hashing import normalize_sha256

Sha256 = Annotated[str, AfterValidator(normalize_sha256)]


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckOptions(_Options):
    dest: Path
    sha256: Sha256


class InstallFileOptions(_Options):
    source: Path
    dest: Path
    sha256: Sha256
    keep_source: bool = False
    mode: int = 0o644
    reserve_bytes: int = Field(default=DEFAULT_RESERVE_BYTES, ge=0)


class HubOptions(_Options):
    repo: str = Field(pattern=r"^([\w.-]+/)?[\w.-]+$")
    file: str = Field(min_length=1)
    revision: str = Field(min_length=1)
    sha256: Sha256
    dest: Path
    cache_dir: Path | None = None
    retries: int = Field(default=3, ge=0)
    retry_wait: float = Field(default=2.0, ge=0)
    reserve_bytes: int = Field(default=DEFAULT_RESERVE_BYTES, ge=0)
    mode: int = 0o644


class Result(BaseModel):
    changed: bool
    present: bool
    path: str
    sha256: str
    size: int | None = None


class CheckResult(Result):
    changed: bool = False
    actual_sha256: str | None = None
    rehashed: bool = False


class InstallResult(Result):
    present: bool = True
    source: str


class HubResult(Result):
    present: bool = True
    repo: str
    file: str
    revision: str
    commit: str | None = None
    resumed_from: int = 0
