"""The inventory groups decide what each host runs (nova/vars/main.yml): one host in
nova_llm_hosts only (the layout before groups) or in both is the whole suite; two inference
hosts and a gateway host split it, and the gateway reaches every llama-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "layout.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
LOCAL = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
SUITE = ["nova-llama-server.service", "nova-litellm.service", "nova-settings.service"]


def layout(tmp_path: Path, inventory: str) -> dict[str, dict]:
    (tmp_path / "inventory.ini").write_text(inventory)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0"}
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.ini"), str(PLAYBOOK),
         "-e", f"out_dir={out}"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_one_host_in_the_llm_group_only_runs_the_whole_suite(tmp_path: Path) -> None:
    hosts = layout(tmp_path, f"[nova_llm_hosts]\nsolo {LOCAL}\n")
    solo = hosts["solo"]
    assert solo["services"] == SUITE
    assert solo["extra_units"] == ["nova-litellm.socket", "nova-litellm-reload.path"]
    assert solo["llama_server_urls"] == ["http://127.0.0.1:8080"]
    assert solo["gateway_api_bases"] == ["http://127.0.0.1:8080/v1"]
    assert solo["watchdog_targets"] == "llama-server,gateway"
    assert solo["secrets_origin"] == "solo"


def test_one_host_in_both_groups_is_the_same(tmp_path: Path) -> None:
    (tmp_path / "both").mkdir()
    (tmp_path / "llm_only").mkdir()
    inventory = f"[nova_llm_hosts]\nsolo {LOCAL}\n"
    both = layout(tmp_path / "both", inventory + "[nova_gateway_hosts]\nsolo\n")
    assert both == layout(tmp_path / "llm_only", inventory)


def test_two_inference_hosts_and_a_gateway_host_split_the_suite(tmp_path: Path) -> None:
    inventory = (
        "[nova_llm_hosts]\n"
        f"gpu1 nova_llama_server_host=10.0.0.11 {LOCAL}\n"
        f"gpu2 nova_llama_server_host=10.0.0.12 nova_llama_server_port=8081 {LOCAL}\n"
        "[nova_gateway_hosts]\n"
        f"gw1 {LOCAL}\n"
    )
    hosts = layout(tmp_path, inventory)
    urls = ["http://10.0.0.11:8080", "http://10.0.0.12:8081"]
    for name in ("gpu1", "gpu2"):
        assert hosts[name]["services"] == ["nova-llama-server.service"]
        assert hosts[name]["extra_units"] == []
        assert hosts[name]["watchdog_targets"] == "llama-server"
    gateway = hosts["gw1"]
    assert gateway["services"] == ["nova-litellm.service", "nova-settings.service"]
    assert gateway["watchdog_targets"] == "gateway"
    assert gateway["llama_server_urls"] == urls
    assert gateway["gateway_api_bases"] == [f"{u}/v1" for u in urls]
    # One set of secrets for the layout, made on its first host.
    assert {h["secrets_origin"] for h in hosts.values()} == {"gpu1"}
