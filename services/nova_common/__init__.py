"""Helpers every nova service shares, one module per concern, each with one guarantee.

* :mod:`.files`: atomic file writes (temp file beside the target, mode set first, fsync,
  rename, directory fsync).
* :mod:`.envfile`: systemd ``EnvironmentFile=`` parsing, with systemd's own quoting rules.
* :mod:`.systemd`: running ``systemctl show`` and parsing what it prints.
* :mod:`.nvml`: the NVIDIA GPUs as NVML sees them (one ``GpuDevice`` model); no GPU is a state.
* :mod:`.probe`: one HTTP request with a timeout that answers instead of raising.
* :mod:`.journal`: journald ``<N>`` priority prefixes on stderr.
* :mod:`.credentials`: secrets from systemd's ``LoadCredential=`` or a named file.
* :mod:`.promql`: the gateway's series as PromQL (plots, nova-diagnose).

Deliberately empty of imports: the gateway's venv imports :mod:`.journal` at interpreter start
(through a ``.pth`` file) and must not pay for, or need the packages of, the other modules.
Everything here but :mod:`.probe` (httpx) is stdlib only; :mod:`.nvml` imports nvidia-ml-py
lazily, where it is installed.
"""
