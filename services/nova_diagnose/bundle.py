"""The support bundle: journal excerpts, rendered configs, unit files and the diagnose output,
redacted, in a .tar.gz readable by its owner only (0600)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

from nova_common.files import atomic_writer

from . import system
from .options import Options
from .redact import Redactor

JOURNAL_LINES = 500


def _member_name(path: Path) -> str:
    return "config/" + str(path).lstrip("/")


def bundle_members(opts: Options, redactor: Redactor, text: str, json_text: str) -> dict[str, str]:
    members = {"diagnose.txt": text, "diagnose.json": json_text}
    for unit in opts.units:
        members[f"journal/{unit}.log"] = system.journal_excerpt(
            opts.journalctl, unit, JOURNAL_LINES
        )
        members[f"units/{unit}"] = system.unit_file(opts.systemctl, unit)
    for path in opts.config_files:
        try:
            members[_member_name(path)] = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            members[_member_name(path) + ".missing"] = f"{path}: {exc.strerror}\n"
    gaps = "".join(f"  {p}\n" for p in redactor.unreadable) or "  none\n"
    members["README.txt"] = (
        "nova-diagnose support bundle. Redacted: the literal contents of the files in\n"
        + "".join(f"  {d}\n" for d in opts.secret_dirs)
        + "and anything shaped like sk-..., AIza..., hf_..., lsv2_..., bearer tokens and\n"
        "key/token/secret/password assignments. Secret files that could not be read:\n" + gaps
    )
    return {name: redactor.redact(content) for name, content in members.items()}


def write_bundle(path: Path, members: dict[str, str]) -> None:
    """Write atomically beside PATH; the file is 0600 from its creation on."""
    now = int(time.time())
    top = path.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz") or "bundle"
    with atomic_writer(path, mode=0o600) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, content in members.items():
            data = content.encode("utf-8")
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), now, 0o600
            tar.addfile(info, io.BytesIO(data))
