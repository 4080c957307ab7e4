"""The residency's configuration: the JSON file the llama_server role writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator


class ModelEntry(BaseModel):
    name: str = Field(min_length=1)
    path: Path
    quantization: str = ""
    # The child's whole command line (sizing wrapper, llama-server and its flags, --port included).
    command: list[str] = Field(min_length=1)
    port: int = Field(gt=0, lt=65536)
    preload: bool = False
    pin: bool = False


class ResidencyConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(gt=0, lt=65536)
    api_key_file: Path
    # What bounds the resident set: the GPUs' free memory, the host's available RAM, or auto
    # (the GPUs when one is visible).
    memory: Literal["auto", "gpu", "ram"] = "auto"
    # A cap in MiB instead of the measured free memory (0: measure at start).
    budget_mib: int = Field(0, ge=0)
    # Kept free on top of the models' estimates (CUDA contexts, the OS).
    reserve_mib: int = Field(512, ge=0)
    # The longest a request waits for its model: room (busy models finishing) plus loading.
    load_timeout_s: float = Field(300, gt=0)
    # How long a child gets to exit on SIGTERM before SIGKILL.
    stop_timeout_s: float = Field(10, gt=0)
    default_model: str
    models: list[ModelEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ResidencyConfig:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names appear twice: {', '.join(duplicates)}")
        ports = [m.port for m in self.models] + [self.port]
        if len(set(ports)) != len(ports):
            raise ValueError("every model needs its own port, and none the residency's")
        if self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not among the models")
        return self


class ConfigError(RuntimeError):
    pass


def load(path: Path) -> ResidencyConfig:
    try:
        return ResidencyConfig.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as e:
        raise ConfigError(f"{path}: {e}") from e
