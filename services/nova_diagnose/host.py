"""GPU (NVML, optional), disk space of the model dir, and the model and build in use."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nova_common.nvml import read_gpus

from .report import DiskReport, FileSize, GpuReport, InUseReport
from .system import ExecStart

MAX_GGUFS = 50


def gpu_report() -> GpuReport:
    return GpuReport.model_validate(read_gpus(), from_attributes=True)


def disk_report(model_dir: Path) -> DiskReport:
    if not model_dir.is_dir():
        return DiskReport(path=str(model_dir), exists=False)
    report = DiskReport(path=str(model_dir), exists=True)
    try:
        usage = shutil.disk_usage(model_dir)
        report.free_bytes, report.total_bytes = usage.free, usage.total
    except OSError as exc:
        report.error = exc.strerror
    ggufs: list[FileSize] = []
    try:
        for root, _dirs, names in os.walk(model_dir):
            for name in names:
                if name.endswith(".gguf") and len(ggufs) < MAX_GGUFS:
                    path = Path(root) / name
                    try:
                        ggufs.append(FileSize(path=str(path), size_bytes=path.stat().st_size))
                    except OSError:
                        continue
    except OSError as exc:
        report.error = exc.strerror
    report.ggufs = sorted(ggufs, key=lambda f: f.size_bytes, reverse=True)
    return report


def in_use_report(exec_start: ExecStart, current: Path) -> InUseReport:
    report = InUseReport(build_link=str(current), exec_start_error=exec_start.error or None)
    model = exec_start.flag("--model", "-m")
    if model:
        report.model_path = model
        try:
            report.model_size_bytes = Path(model).stat().st_size
            report.model_present = True
        except OSError:
            report.model_present = False
    report.gpu_layers = exec_start.flag("--n-gpu-layers", "-ngl", "--gpu-layers")
    try:
        report.build_target = os.readlink(current)
    except FileNotFoundError:
        report.build_error = "missing"
        return report
    except OSError as exc:
        report.build_error = exc.strerror or "not a symlink"
        return report
    if current.exists():
        report.build_ok = True
    else:
        report.build_error = "dangling symlink"
    return report


def human(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
