"""The inventory groups decide what each host runs (nova/vars/main.yml): one host in
nova_llm_hosts only (the layout before groups) or in both is the whole suite; two inference
hosts and a gateway host split it, and the gateway reaches every llama-server; several gateway
hosts share one Postgres and one Redis on the state host, and one host keeps SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from .layout_play import LOCAL, run_play

SUITE = ["nova-llama-server.service", "nova-litellm.service", "nova-settings.service"]


def layout(tmp_path: Path, inventory: str) -> dict[str, dict]:
    out = run_play(tmp_path, "layout.yml", inventory)
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
    assert solo["settings_database_url"] == "" and not solo["keeps_shared_state"]
    assert solo["users_origin"] == "solo"
    assert solo["gateway_redis"] == ""
    assert not solo["runs_frontdoor"]
    assert solo["listens_on"] == ["127.0.0.1"] * 3  # nothing beyond loopback on one host


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


def test_two_gateway_hosts_share_postgres_on_the_first(tmp_path: Path) -> None:
    inventory = (
        "[nova_llm_hosts]\n"
        f"gpu1 nova_private_address=10.0.0.11 {LOCAL}\n"
        "[nova_gateway_hosts]\n"
        f"gw1 nova_private_address=10.0.0.21 {LOCAL}\n"
        f"gw2 nova_private_address=10.0.0.22 {LOCAL}\n"
    )
    hosts = layout(tmp_path, inventory)
    url = "postgresql://nova_settings@10.0.0.21:5432/nova_settings"
    assert [hosts[h]["settings_database_url"] for h in ("gw1", "gw2")] == [url, url]
    assert [h for h in hosts if hosts[h]["keeps_shared_state"]] == ["gw1"]
    # The gateways share their router state in Redis there too.
    assert hosts["gw1"]["gateway_redis"] == hosts["gw2"]["gateway_redis"] == "10.0.0.21:6379"
    # One set of users, made through the first gateway host; tokens copied to the other.
    assert hosts["gw1"]["users_origin"] == hosts["gw2"]["users_origin"] == "gw1"
    # Every service listens on its host's private address; inference hosts are reached there.
    assert hosts["gw2"]["listens_on"] == ["10.0.0.22"] * 3
    assert hosts["gw1"]["llama_server_urls"] == ["http://10.0.0.11:8080"]
    # The first gateway host is the front door of both.
    assert [h for h in hosts if hosts[h]["runs_frontdoor"]] == ["gw1"]
    assert hosts["gw1"]["frontdoor_gateways"] == [
        ["gw1", "10.0.0.21:4000"],
        ["gw2", "10.0.0.22:4000"],
    ]
    assert hosts["gw1"]["frontdoor_settings"] == [
        ["gw1", "10.0.0.21:8000"],
        ["gw2", "10.0.0.22:8000"],
    ]
    # Postgres admits the gateway hosts only, with room for both pools.
    assert hosts["gw1"]["postgres_clients"] == ["10.0.0.21", "10.0.0.22"]
    assert hosts["gw1"]["postgres_max_connections"] == 2 * (64 + 4) + 10


def test_a_state_host_of_its_own(tmp_path: Path) -> None:
    inventory = (
        "[nova_llm_hosts]\n"
        f"gpu1 {LOCAL}\n"
        "[nova_gateway_hosts]\n"
        f"gw1 nova_private_address=10.0.0.21 {LOCAL}\n"
        f"gw2 nova_private_address=10.0.0.22 {LOCAL}\n"
        "[nova_state_hosts]\n"
        f"db1 nova_private_address=10.0.0.31 nova_postgres_port=6432 {LOCAL}\n"
    )
    hosts = layout(tmp_path, inventory)
    assert [h for h in hosts if hosts[h]["keeps_shared_state"]] == ["db1"]
    url = "postgresql://nova_settings@10.0.0.31:6432/nova_settings"
    assert hosts["gw1"]["settings_database_url"] == hosts["gw2"]["settings_database_url"] == url
    assert hosts["db1"]["services"] == []
    assert hosts["gw2"]["gateway_redis"] == "10.0.0.31:6379"
    # gpu1 sets no address: loopback, whatever the host evaluating it has.
    assert hosts["gw1"]["llama_server_urls"] == ["http://127.0.0.1:8080"]


def test_a_front_door_of_its_own(tmp_path: Path) -> None:
    inventory = (
        "[nova_llm_hosts]\n"
        f"gpu1 {LOCAL}\n"
        "[nova_gateway_hosts]\n"
        f"gw1 nova_private_address=10.0.0.21 {LOCAL}\n"
        f"gw2 nova_private_address=10.0.0.22 nova_gateway_port=4001 {LOCAL}\n"
        "[nova_frontdoor_hosts]\n"
        f"lb1 nova_private_address=10.0.0.41 {LOCAL}\n"
    )
    hosts = layout(tmp_path, inventory)
    assert [h for h in hosts if hosts[h]["runs_frontdoor"]] == ["lb1"]
    assert hosts["lb1"]["frontdoor_gateways"] == [
        ["gw1", "10.0.0.21:4000"],
        ["gw2", "10.0.0.22:4001"],
    ]
    assert hosts["lb1"]["services"] == []
