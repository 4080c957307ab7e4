"""What nova-diagnose found, as pydantic models (the --json output)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from nova_common.nvml import GpuDevice


class UnitReport(BaseModel):
    unit: str
    load_state: str = "unknown"
    active_state: str = "unknown"
    sub_state: str = "unknown"
    result: str | None = None
    n_restarts: int | None = None
    since: str | None = None
    reason: str | None = None  # why the state is unknown or odd
    journal_kind: Literal["err", "last", "none", "unknown"] = "none"
    journal: list[str] = Field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.active_state != "unknown"


class HttpCheck(BaseModel):
    name: str
    url: str
    ok: bool
    skipped: bool = False
    status: int | None = None
    detail: str = ""
    elapsed_ms: int | None = None
    timed_out: bool = False
    unreachable: bool = False


class GpuReport(BaseModel):
    checked: bool = True
    available: bool = False
    driver_version: str | None = None
    reason: str | None = None
    devices: list[GpuDevice] = Field(default_factory=list)


class FileSize(BaseModel):
    path: str
    size_bytes: int


class DiskReport(BaseModel):
    path: str
    exists: bool
    free_bytes: int | None = None
    total_bytes: int | None = None
    ggufs: list[FileSize] = Field(default_factory=list)
    error: str | None = None

    @property
    def free_percent(self) -> float | None:
        if self.free_bytes is None or not self.total_bytes:
            return None
        return 100.0 * self.free_bytes / self.total_bytes


class InUseReport(BaseModel):
    exec_start_error: str | None = None
    model_path: str | None = None
    model_present: bool | None = None
    model_size_bytes: int | None = None
    gpu_layers: str | None = None
    build_link: str
    build_target: str | None = None
    build_ok: bool = False
    build_error: str | None = None


class FiringAlert(BaseModel):
    name: str
    severity: str | None = None
    summary: str = ""
    since: str | None = None


class MonitoringReport(BaseModel):
    """Prometheus' view: the alerts firing now and the last values of the key series."""

    checked: bool = True
    url: str = ""
    error: str | None = None
    firing: list[FiringAlert] = Field(default_factory=list)
    series: dict[str, float | None] = Field(default_factory=dict)


class Finding(BaseModel):
    level: Literal["problem", "note"]
    message: str
    next_step: str


class Report(BaseModel):
    host: str
    time: str
    healthy: bool = True
    units: list[UnitReport] = Field(default_factory=list)
    http: list[HttpCheck] = Field(default_factory=list)
    gpu: GpuReport = Field(default_factory=GpuReport)
    disk: DiskReport
    in_use: InUseReport
    monitoring: MonitoringReport = Field(default_factory=lambda: MonitoringReport(checked=False))
    findings: list[Finding] = Field(default_factory=list)
    redaction_gaps: list[str] = Field(default_factory=list)

    def check(self, name: str) -> HttpCheck | None:
        return next((c for c in self.http if c.name == name), None)
