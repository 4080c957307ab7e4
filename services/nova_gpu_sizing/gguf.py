"""Minimal GGUF reader: the header and the metadata key/value section, nothing else.

Format (v2 and v3, little- or big-endian): magic ``GGUF``, uint32 version, uint64 tensor count,
uint64 KV count, then KV pairs (string key, uint32 value type, value). Strings are a uint64
length and UTF-8 bytes. Arrays are a uint32 element type, a uint64 count and the elements. Large
arrays (the tokenizer's vocabulary) are skipped, not kept; only their length is recorded.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
# Numeric arrays up to this many elements are kept (per-layer head counts); longer ones skipped.
MAX_KEPT_ARRAY = 4096

# GGUF value types: id -> struct format (strings, arrays and bools are handled apart).
_SCALARS: dict[int, str] = {
    0: "B",  # uint8
    1: "b",  # int8
    2: "H",  # uint16
    3: "h",  # int16
    4: "I",  # uint32
    5: "i",  # int32
    6: "f",  # float32
    10: "Q",  # uint64
    11: "q",  # int64
    12: "d",  # float64
}
_BOOL, _STRING, _ARRAY = 7, 8, 9


class GGUFError(ValueError):
    """Not a GGUF file, an unsupported version, or a truncated/corrupt header."""


@dataclass(frozen=True)
class SkippedArray:
    """An array too long to keep: its element type and length."""

    element_type: int
    length: int


# A metadata value: scalars, strings, kept arrays, or the length of a skipped one.
Value = int | float | bool | str | list["Value"] | SkippedArray


@dataclass(frozen=True)
class ModelInfo:
    """What the sizing needs to know about a model."""

    path: str
    file_size: int
    version: int
    tensor_count: int
    architecture: str
    block_count: int
    context_length: int
    embedding_length: int
    head_count: int
    head_count_kv: int | list[int]
    key_length: int
    value_length: int
    metadata: dict[str, Value] = field(repr=False, default_factory=dict)

    @property
    def kv_heads_total(self) -> int:
        """Sum of the KV heads over all layers (per-layer counts may differ)."""
        if isinstance(self.head_count_kv, list):
            return sum(self.head_count_kv)
        return self.head_count_kv * self.block_count

    def kv_elements_per_token(self) -> int:
        """K and V elements stored per token over all layers."""
        return self.kv_heads_total * (self.key_length + self.value_length)


class _Reader:
    def __init__(self, stream: BinaryIO, endian: str) -> None:
        self.stream = stream
        self.endian = endian

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise GGUFError("truncated GGUF header")
        return data

    def unpack(self, fmt: str) -> int | float:
        size = struct.calcsize(fmt)
        return struct.unpack(self.endian + fmt, self.read(size))[0]

    def string(self) -> str:
        length = int(self.unpack("Q"))
        if length > 1 << 24:
            raise GGUFError(f"implausible string length {length}")
        return self.read(length).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Value:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _BOOL:
            return self.read(1) != b"\x00"
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.array()
        raise GGUFError(f"unknown GGUF value type {vtype}")

    def array(self) -> list[Value] | SkippedArray:
        etype = int(self.unpack("I"))
        count = int(self.unpack("Q"))
        if etype in _SCALARS or etype == _BOOL:
            size = 1 if etype == _BOOL else struct.calcsize(_SCALARS[etype])
            if count > MAX_KEPT_ARRAY:
                self.stream.seek(size * count, os.SEEK_CUR)
                return SkippedArray(etype, count)
            return [self.value(etype) for _ in range(count)]
        if etype == _STRING:
            if count > MAX_KEPT_ARRAY:
                for _ in range(count):
                    self.stream.seek(int(self.unpack("Q")), os.SEEK_CUR)
                return SkippedArray(etype, count)
            return [self.string() for _ in range(count)]
        if etype == _ARRAY:
            return [self.array() for _ in range(count)]
        raise GGUFError(f"unknown GGUF array element type {etype}")


def read_metadata(stream: BinaryIO) -> tuple[int, int, dict[str, Value]]:
    """Version, tensor count and the metadata of a GGUF stream positioned at its start."""
    if stream.read(4) != MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    raw_version = stream.read(4)
    if len(raw_version) != 4:
        raise GGUFError("truncated GGUF header")
    endian = "<"
    version = struct.unpack("<I", raw_version)[0]
    if version & 0xFFFF == 0:  # a big-endian file read as little-endian
        endian, version = ">", struct.unpack(">I", raw_version)[0]
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version} (2 and 3 are)")
    reader = _Reader(stream, endian)
    tensor_count = int(reader.unpack("Q"))
    kv_count = int(reader.unpack("Q"))
    metadata: dict[str, Value] = {}
    for _ in range(kv_count):
        key = reader.string()
        metadata[key] = reader.value(int(reader.unpack("I")))
    return version, tensor_count, metadata


def _int(metadata: dict[str, Value], key: str, default: int | None = None) -> int:
    value = metadata.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        if default is None:
            raise GGUFError(f"GGUF metadata lacks the integer {key}")
        return default
    return value


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read the shape of the model in a GGUF file (metadata only; tensors are not read)."""
    path = Path(path)
    with path.open("rb") as stream:
        version, tensor_count, metadata = read_metadata(stream)
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise GGUFError("GGUF metadata lacks general.architecture")
    block_count = _int(metadata, f"{arch}.block_count")
    embedding = _int(metadata, f"{arch}.embedding_length")
    heads = _int(metadata, f"{arch}.attention.head_count")
    raw_kv = metadata.get(f"{arch}.attention.head_count_kv", heads)
    head_count_kv: int | list[int]
    if isinstance(raw_kv, list):
        head_count_kv = [int(v) for v in raw_kv if isinstance(v, int)]
        if len(head_count_kv) != block_count:
            raise GGUFError(f"{arch}.attention.head_count_kv has not one value per layer")
    elif isinstance(raw_kv, int) and not isinstance(raw_kv, bool):
        head_count_kv = raw_kv
    else:
        raise GGUFError(f"bad {arch}.attention.head_count_kv")
    if heads <= 0:
        raise GGUFError(f"{arch}.attention.head_count must be positive")
    head_dim = embedding // heads
    return ModelInfo(
        path=str(path),
        file_size=path.stat().st_size,
        version=version,
        tensor_count=tensor_count,
        architecture=arch,
        block_count=block_count,
        context_length=_int(metadata, f"{arch}.context_length", 0),
        embedding_length=embedding,
        head_count=heads,
        head_count_kv=head_count_kv,
        key_length=_int(metadata, f"{arch}.attention.key_length", head_dim),
        value_length=_int(metadata, f"{arch}.attention.value_length", head_dim),
        metadata=metadata,
    )
