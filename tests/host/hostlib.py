"""The host tests' helpers: the test host's addresses, ``Host`` (commands on it, HTTP clients,
state helpers), gateway requests (``chat``, ``Answer``, ``served_by``), the settings database
as its owner sees it, and ``provisioned_host`` (boot, provision, power off), which the
``host`` fixture in ``conftest.py`` wraps.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from nova_common.ports import port_is_free
from tests.standins.gemini_api import GeminiStandin

ROOT = Path(__file__).resolve().parents[2]

# Overridable so that two sessions on one machine do not collide (the hosts share this
# machine's network namespace): NOVA_HOSTTEST_NAME, NOVA_HOSTTEST_SSH_PORT, and
# NOVA_HOSTTEST_PORT_OFFSET, added to every service port and to the Gemini stand-in's port.
HOST_NAME = os.environ.get("NOVA_HOSTTEST_NAME") or "hosttest"
SSH_PORT = int(os.environ.get("NOVA_HOSTTEST_SSH_PORT") or 2251)
PORT_OFFSET = int(os.environ.get("NOVA_HOSTTEST_PORT_OFFSET") or 0)
LLAMA_PORT = 38080 + PORT_OFFSET
GATEWAY_PORT = 34000 + PORT_OFFSET
SETTINGS_PORT = 38000 + PORT_OFFSET
PROMETHEUS_PORT = 39090 + PORT_OFFSET
GEMINI_PORT = 38765 + PORT_OFFSET
LOCAL_MODEL = "SmolLM2-135M-Instruct"
GEMINI_MODEL = "gemini-2.5-flash"
# A streamed reply of a few seconds from the local model: long enough to be cut by a restart.
COUNTING_PROMPT = "Count from 1 to 60 in words, separated by commas."
COUNTING_TOKENS = 60
# The key the Gemini stand-in accepts (a fixed one, so a kept host's stored key stays valid).
GEMINI_KEY = "AIzaHostTestKey0123456789abcdefghijklmno"
NOVA_HOST = ROOT / "scripts" / "nova-host"
# A user the inventory adds beside the first admin (nova_settings_users).
INVENTORY_USER = "inventory-user"


def _tail(text: str, n: int = 4000) -> str:
    return text[-n:]


@dataclass
class Host:
    """A provisioned host: its URLs, credentials and a way to run commands on it."""

    name: str
    gateway_url: str
    llama_url: str
    settings_url: str
    gateway_key: str
    settings_token: str
    gemini: GeminiStandin
    gemini_key: str
    # llama-server's API key: every endpoint but /health needs it.
    llama_key: str = ""
    local_model: str = LOCAL_MODEL
    gemini_model: str = GEMINI_MODEL
    ssh_port: int = SSH_PORT
    llama_port: int = LLAMA_PORT
    gateway_port: int = GATEWAY_PORT
    settings_port: int = SETTINGS_PORT
    gateway_config: str = "/var/lib/nova-settings/gateway/config.yaml"
    google_key_file: str = "/var/lib/nova-settings/secrets/google_api_key"
    # site.yml again with the provisioning's inventory and variables, plus these arguments:
    # (exit status, output).
    playbook: Callable[[list[str]], tuple[int, str]] | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    # --- commands on the host -------------------------------------------------------------

    def ssh(self, cmd: str, check: bool = True, timeout: float = 120) -> str:
        """Run ``cmd`` (a shell command line) on the host as root; its stdout, stripped."""
        proc = subprocess.run(
            [str(NOVA_HOST), "ssh", self.name, cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"on host: {cmd!r} exited {proc.returncode}: {proc.stderr.strip()} {proc.stdout}"
            )
        return proc.stdout.strip()

    def unit(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl show`` properties of ``unit``."""
        out = self.ssh(f"systemctl show {shlex.quote(unit)} -p {','.join(props)}")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def mtime(self, path: str) -> str:
        return self.ssh(f"stat -c %Y.%Z {shlex.quote(path)} 2>/dev/null || echo missing")

    # --- HTTP clients -----------------------------------------------------------------------

    def _client(self, base: str, token: str, timeout: float) -> httpx.Client:
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        self._clients.append(client)
        return client

    def gateway(self, timeout: float = 90) -> httpx.Client:
        return self._client(self.gateway_url, self.gateway_key, timeout)

    def settings(self, timeout: float = 30) -> httpx.Client:
        return self._client(self.settings_url, self.settings_token, timeout)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    # --- state helpers ----------------------------------------------------------------------

    def gateway_models(self) -> list[str]:
        with self.gateway(timeout=10) as client:
            response = client.get("/v1/models")
            response.raise_for_status()
            return [m["id"] for m in response.json()["data"]]

    def settings_models(self) -> dict[str, dict]:
        with self.settings() as client:
            response = client.get("/api/models")
            response.raise_for_status()
            body = response.json()
            return {m["id"]: m for m in body["models"]} | {"_gateway": body["gateway"]}

    def wait_gateway_settled(self, timeout: float = 90, after: str | None = None) -> float:
        """Wait until nova-litellm is active with no restart pending (and, with ``after``, a
        new InvocationID) and the gateway answers; seconds waited."""
        start = time.monotonic()
        last = ""
        while time.monotonic() - start < timeout:
            reload_state = self.unit("nova-litellm-reload.service", "ActiveState")["ActiveState"]
            state = self.unit("nova-litellm.service", "ActiveState", "InvocationID")
            last = f"reload={reload_state} litellm={state}"
            if (
                reload_state in ("inactive", "failed")
                and state["ActiveState"] == "active"
                and (after is None or state["InvocationID"] != after)
                and not self.ssh("systemctl list-jobs --no-legend | grep nova-litellm", False)
            ):
                try:
                    with httpx.Client(timeout=5) as client:
                        if client.get(f"{self.gateway_url}/health/readiness").status_code == 200:
                            return time.monotonic() - start
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        raise AssertionError(f"gateway not settled after {timeout} s ({last})")

    def store_google_key(self, key: str) -> dict:
        with self.settings() as client:
            response = client.post(
                "/api/user-settings/validate-api-key",
                json={"provider": "google", "api_key": key, "store": True},
            )
            return {"status_code": response.status_code, **response.json()}

    def delete_google_key(self) -> dict:
        with self.settings() as client:
            response = client.delete("/api/api-keys/google")
            response.raise_for_status()
            return response.json()

    def ensure_google_key(self) -> None:
        """The stand-in's key stored and the gateway serving Gemini (restarting it if needed)."""
        if self.gemini_model in self.gateway_models() and self.ssh(
            f"test -s {self.google_key_file} && echo yes", check=False
        ):
            return
        before = self.unit("nova-litellm.service", "InvocationID")["InvocationID"]
        result = self.store_google_key(self.gemini_key)
        assert result["status"] == "valid" and result["stored"], result
        self.wait_gateway_settled(after=before)
        assert self.gemini_model in self.gateway_models()

    def ensure_no_google_key(self) -> None:
        """No Google key stored and the gateway serving the local model alone."""
        if self.gemini_model not in self.gateway_models():
            return
        before = self.unit("nova-litellm.service", "InvocationID")["InvocationID"]
        self.delete_google_key()
        self.wait_gateway_settled(after=before)
        assert self.gemini_model not in self.gateway_models()

    def ensure_llama_running(self, timeout: float = 60) -> None:
        self.ssh("systemctl start nova-llama-server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.llama_url}/health", timeout=3).status_code == 200:
                    return
            time.sleep(0.5)
        raise AssertionError("llama-server not healthy")

    def wait_routes_normal(self, timeout: float = 90) -> float:
        """Until both models are answered by their own backend (no fallback, no cooldown left
        over from an earlier test); seconds waited."""
        start = time.monotonic()
        local_ok = gemini_ok = False
        with self.gateway(timeout=30) as client:
            while time.monotonic() - start < timeout:
                if not local_ok:
                    local_ok = served_by(chat(client, self.local_model)) == "local"
                if not gemini_ok:
                    gemini_ok = served_by(chat(client, self.gemini_model)) == "gemini"
                if local_ok and gemini_ok:
                    return time.monotonic() - start
                time.sleep(1)
        raise AssertionError(f"routes not back to normal: local={local_ok} gemini={gemini_ok}")


METRICS_TOKEN_FILE = "/etc/nova/secrets/metrics-token"


def scrape(url: str, token: str | None) -> str:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    # LiteLLM answers /metrics with a redirect to /metrics/, where its metrics app is mounted.
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30, follow_redirects=True)
    assert response.status_code == 200, response.text[:300]
    return response.text


def total(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    out = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            out += float(match.group(2))
    return out


# --- request helpers shared by the tests ----------------------------------------------------


@dataclass
class Answer:
    """One gateway answer, streamed or not."""

    ok: bool
    status: int
    seconds: float
    text: str = ""
    model: str = ""
    fallbacks: int = 0
    tool_calls: list[dict] = field(default_factory=list)
    error: str = ""
    first_token: bool = False


def _fallbacks(headers: httpx.Headers) -> int:
    try:
        return int(headers.get("x-litellm-attempted-fallbacks") or 0)
    except ValueError:
        return 0


def chat(
    client: httpx.Client,
    model: str,
    content: str = "Say hello.",
    max_tokens: int = 4,
    stream: bool = False,
    **extra: object,
) -> Answer:
    """A chat completion through the gateway; never raises for HTTP-level failures."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
        **extra,
    }
    start = time.monotonic()
    try:
        if not stream:
            response = client.post("/v1/chat/completions", json=body)
            took = time.monotonic() - start
            if response.status_code != 200:
                return Answer(False, response.status_code, took, error=response.text[:500])
            data = response.json()
            message = data["choices"][0]["message"]
            return Answer(
                True,
                200,
                took,
                text=message.get("content") or "",
                model=data.get("model") or "",
                fallbacks=_fallbacks(response.headers),
                tool_calls=message.get("tool_calls") or [],
            )
        return _stream(client, body, start)
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        return Answer(False, 0, time.monotonic() - start, error=f"{type(exc).__name__}: {exc}")


def _stream(client: httpx.Client, body: dict, start: float) -> Answer:
    text: list[str] = []
    calls: dict[int, dict] = {}
    model = ""
    done = first = False
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            return Answer(
                False, response.status_code, time.monotonic() - start, error=response.text[:500]
            )
        fallbacks = _fallbacks(response.headers)
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            chunk = json.loads(payload)
            if "error" in chunk:
                return Answer(
                    False,
                    200,
                    time.monotonic() - start,
                    text="".join(text),
                    error=str(chunk["error"])[:500],
                    first_token=first,
                )
            model = chunk.get("model") or model
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    text.append(delta["content"])
                    first = True
                for call in delta.get("tool_calls") or []:
                    first = True
                    slot = calls.setdefault(
                        call.get("index", 0),
                        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                    )
                    slot["id"] = call.get("id") or slot["id"]
                    function = call.get("function") or {}
                    slot["function"]["name"] += function.get("name") or ""
                    slot["function"]["arguments"] += function.get("arguments") or ""
    took = time.monotonic() - start
    return Answer(
        done,
        200,
        took,
        text="".join(text),
        model=model,
        fallbacks=fallbacks,
        tool_calls=[calls[i] for i in sorted(calls)],
        error="" if done else "stream ended without [DONE]",
        first_token=first,
    )


def served_by(answer: Answer) -> str:
    """``gemini`` (the stand-in's answers start with its name), ``local`` or ``failed``."""
    if not answer.ok:
        return "failed"
    if answer.text.startswith("gemini-standin:") or (
        answer.tool_calls and answer.model.startswith("gemini")
    ):
        return "gemini"
    return "local"


# --- the settings database and the stack's health -----------------------------------------

DB = "/var/lib/nova-settings/settings.db"
SETTINGS = "/api/user-settings/"

# Runs on the host as the database's owner (so that no root-owned -wal/-shm file is left
# behind): both tables, the settings joined with the user names, and the integrity check.
_SNAPSHOT = f"""
import json, sqlite3
c = sqlite3.connect({DB!r}, timeout=30)
out = {{
    "user": [list(r) for r in c.execute('SELECT * FROM "user" ORDER BY id')],
    "user_settings": [list(r) for r in c.execute('SELECT * FROM user_settings ORDER BY 1')],
    "by_name": {{
        r[0]: {{"llm_model": r[1], "llm_temperature": r[2], "llm_max_tokens": r[3],
                "revision": r[4]}}
        for r in c.execute(
            'SELECT u.name, s.llm_model, s.llm_temperature, s.llm_max_tokens, s.revision'
            ' FROM user_settings s JOIN "user" u ON u.id = s.user_id')
    }},
    "integrity": [r[0] for r in c.execute("PRAGMA integrity_check")],
}}
print(json.dumps(out))
"""


@dataclass
class Load:
    """``threads`` clients sending completions of ``content`` for ``model`` until stopped."""

    host: Host
    model: str
    stream: bool = False
    threads: int = 4
    content: str = "Say hello."
    max_tokens: int = 4
    timeout: float = 90
    answers: list[tuple[float, Answer]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]

    def _run(self) -> None:
        with httpx.Client(
            base_url=self.host.gateway_url,
            headers={"Authorization": f"Bearer {self.host.gateway_key}"},
            timeout=self.timeout,
        ) as client:
            while not self._stop.is_set():
                answer = chat(
                    client,
                    self.model,
                    self.content,
                    max_tokens=self.max_tokens,
                    stream=self.stream,
                )
                with self._lock:
                    self.answers.append((time.monotonic(), answer))

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 30)

    def since(self, t0: float) -> list[Answer]:
        with self._lock:
            return [a for t, a in self.answers if t >= t0]

    def wait_for(self, t0: float, backend: str, timeout: float) -> float | None:
        """Seconds from ``t0`` until an answer finished after ``t0`` came from ``backend``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for t, answer in self.answers:
                    if t >= t0 and served_by(answer) == backend:
                        return t - t0
            time.sleep(0.2)
        return None


def python_as_db_owner(host: Host, script: str) -> str:
    """Run a Python script on the host as the owner of the settings database."""
    command = f'runuser -u "$(stat -c %U {DB})" -- python3 -c {shlex.quote(script)}'
    return host.ssh(command, timeout=60)


def db_snapshot(host: Host) -> dict:
    return json.loads(python_as_db_owner(host, _SNAPSHOT))


def get_ok(url: str, timeout: float = 3, **kw: object) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=timeout, **kw).status_code == 200  # type: ignore[arg-type]
    return False


def wait_healthy(host: Host, deadline_s: float = 180) -> float:
    """Until llama-server /health, the gateway's /health/readiness and the settings /health
    all answer 200 (and no nova job is pending); seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if (
            get_ok(f"{host.llama_url}/health")
            and get_ok(f"{host.gateway_url}/health/readiness")
            and get_ok(f"{host.settings_url}/health")
            and not host.ssh("systemctl list-jobs --no-legend | grep nova-", check=False)
        ):
            return time.monotonic() - start
        time.sleep(0.5)
    states = host.ssh("systemctl is-active nova-llama-server nova-litellm nova-settings", False)
    raise AssertionError(f"stack not healthy after {deadline_s} s: {states.split()}")


def make_users(host: Host, names: list[str]) -> dict[str, str]:
    """Users created with the service's own admin CLI; their tokens."""
    tokens = {}
    for name in names:
        token_file = f"/var/lib/nova-settings/tokens/{name}.token"
        host.ssh(
            "set -a; . /etc/nova/settings.env; set +a; "
            "cd /; runuser -u nova-settings -- nova-settings-admin"
            f" ensure-user {name}"
            f" --token-file {token_file} >/dev/null"
        )
        tokens[name] = host.ssh(f"cat {token_file}")
    return tokens


# --- booting and provisioning ----------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        output = f"{_tail(proc.stdout)}\n{_tail(proc.stderr)}"
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{output}")
    return proc.stdout


def _inventory(path: Path, key_file: str, gemini_base: str) -> None:
    path.write_text(
        f"""---
# Written by tests/host/hostlib.py: the host-test host, its own ports, Gemini at the stand-in.
nova_llm_hosts:
  hosts:
    nova-{HOST_NAME}:
      ansible_host: 127.0.0.1
      ansible_port: {SSH_PORT}
      ansible_user: root
      ansible_ssh_private_key_file: {key_file}
      ansible_python_interpreter: /usr/bin/python3
      ansible_ssh_common_args: >-
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o ControlMaster=auto -o ControlPersist=120s
      nova_llama_server_port: {LLAMA_PORT}
      # Its local models' llama-servers (the demo's use 18180 and up on the same loopback).
      llama_server_residency_first_port: {LLAMA_PORT + 100}
      nova_gateway_port: {GATEWAY_PORT}
      nova_settings_port: {SETTINGS_PORT}
      nova_prometheus_port: {PROMETHEUS_PORT}
      # Quick enough for the monitoring tests to see an alert fire and resolve.
      nova_monitoring_scrape_interval_s: 5
      nova_monitoring_unit_down_for: 15s
      nova_gemini_api_base: {gemini_base}
      nova_settings_users:
        - {{name: {INVENTORY_USER}, role: user}}
""",
        encoding="utf-8",
    )


@contextlib.contextmanager
def provisioned_host(workdir: Path) -> Iterator[Host]:
    """Boot the host, provision it with the embedded model and the Gemini stand-in's address,
    yield it, and power it off afterwards (unless ``NOVA_HOSTTEST_KEEP=1``). The stand-in runs
    here, in-process, for as long as the host is up; ``workdir`` keeps the inventory and the
    playbook's log."""
    if not port_is_free(GEMINI_PORT):
        raise RuntimeError(f"port {GEMINI_PORT} (Gemini stand-in) is taken")
    gemini_key = GEMINI_KEY
    gemini = GeminiStandin(key=gemini_key, port=GEMINI_PORT).start()
    inventory = workdir / "inventory.yml"
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    up = False
    try:
        env["NOVA_EMBEDDED_MODEL"] = _run([str(ROOT / "scripts/fetch-embedded-model")]).strip()
        key_file = _run([str(NOVA_HOST), "key"]).strip()
        _inventory(inventory, key_file, gemini.base)
        start = time.monotonic()
        _run([str(NOVA_HOST), "up", HOST_NAME, str(SSH_PORT)], timeout=300)
        up = True
        print(f"\n[host] {HOST_NAME} booted in {time.monotonic() - start:.0f} s", flush=True)
        start = time.monotonic()
        site = [
            "ansible-playbook",
            "-i",
            str(inventory),
            "ansible/site.yml",
            "-e",
            "@ansible/vars/embedded_model.yml",
            "-e",
            "@ansible/vars/second_local_model.yml",
        ]
        log = _run(site, env=env, timeout=1500)
        (workdir / "playbook.log").write_text(log, encoding="utf-8")
        recap = log[log.rfind("PLAY RECAP") :].splitlines()[1:2]
        print(
            f"[host] provisioned in {time.monotonic() - start:.0f} s: {' '.join(recap)}",
            flush=True,
        )

        def on_host(cmd: str) -> str:
            return _run([str(NOVA_HOST), "ssh", HOST_NAME, cmd]).strip()

        instance = Host(
            name=HOST_NAME,
            gateway_url=f"http://127.0.0.1:{GATEWAY_PORT}",
            llama_url=f"http://127.0.0.1:{LLAMA_PORT}",
            settings_url=f"http://127.0.0.1:{SETTINGS_PORT}",
            gateway_key=on_host("cat /etc/nova/secrets/gateway-master-key"),
            settings_token=on_host("cat /var/lib/nova-settings/tokens/admin.token"),
            llama_key=on_host("cat /etc/nova/secrets/llama-api-key"),
            gemini=gemini,
            gemini_key=gemini_key,
        )

        def playbook(args: list[str]) -> tuple[int, str]:
            proc = subprocess.run(
                [*site, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
            )
            return proc.returncode, proc.stdout + proc.stderr

        instance.playbook = playbook
        try:
            yield instance
        finally:
            instance.close()
    finally:
        gemini.stop()
        if up and os.environ.get("NOVA_HOSTTEST_KEEP") != "1":
            subprocess.run([str(NOVA_HOST), "down", HOST_NAME], check=False, timeout=180)
