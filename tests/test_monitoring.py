"""Monitoring on the hub that `make deploy` made, turned on and off with `site.yml --tags monitoring,backup` runs.

With a webhook receiver (an HTTP server of this test on the loopback, where Alertmanager posts), a scrape every
5 s, alerts after 10 s down and a scheduled backup of the admin's files into a directory of the test:

- every target answers, and a second run changes nothing;
- the alert rules pass promtool's unit tests on recorded series, each below and above its threshold;
- a spawn moves the hub's spawn metrics; a scheduled backup's run moves the backup metrics;
- the hub stopped fires HubDown, which Alertmanager posts to the receiver; the hub started again resolves it;
- the firewall's rules flushed fire FirewallRulesMissing (its check runs every minute); applied again, it resolves;
- every query of the Grafana dashboards runs in this Prometheus, and every metric it reads exists here;
- playbooks/status.yml prints the state and exits 0; with the proxy stopped it says so and fails;
- a process of a server killed for memory fires ServerKilledForMemory (the servers' exporter counts it);
- at the end, the deployment as make deploy made it: no monitoring container, configuration or data volume.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import OUTPUT, ROOT, recap, run_playbook
# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import URL, deployed, healthy  # noqa: F401 # pylint: disable=unused-import
from test_backup_schedule import cron_commands, run_as_cron

from jhub_testing.hubclient import HubClient

PROMETHEUS = "http://127.0.0.1:9090"
IMAGE = yaml.safe_load((ROOT / "roles/jupyterhub_monitoring/defaults/main.yml").read_text())["jupyterhub_monitoring_image"]
CONFIG = Path("/srv/jupyterhub-monitoring")
DASHBOARDS = ROOT / "roles/jupyterhub_monitoring/files/dashboards"
BACKUPS = Path("/var/backups/jhub-docker-test-monitoring")
METRICS = Path("/var/tmp/jhub-docker-test-monitoring-metrics")
CONTAINERS = ["jupyterhub-prometheus", "jupyterhub-alertmanager", "jupyterhub-node-exporter", "jupyterhub-server-metrics",
              "jupyterhub-blackbox"]
CERTIFICATES = Path("/var/tmp/jhub-docker-test-monitoring-tls")
NOTEBOOK = "jhub-docker/notebook:6.1.1"


class Receiver(ThreadingHTTPServer):
    """Alertmanager's webhook receiver: keeps each notification's JSON."""

    def __init__(self):
        self.notifications: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N802 (http.server's name) pylint: disable=no-self-argument
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.notifications.append(json.loads(body))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args):  # pylint: disable=no-self-argument
                pass

        super().__init__(("127.0.0.1", 0), Handler)


class HttpsSite(ThreadingHTTPServer):
    """An HTTPS site on the loopback that answers 200, with a certificate that expires in DAYS days (use() changes it)."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N802 (http.server's name) pylint: disable=no-self-argument
                handler.send_response(200)
                handler.send_header("Content-Length", "2")
                handler.end_headers()
                handler.wfile.write(b"ok")

            def log_message(handler, *args):  # pylint: disable=no-self-argument
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.context = None
        self.expires = None

    def use(self, days: int) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub.example.org")])
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.expires = now + datetime.timedelta(days=days)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                       .not_valid_after(self.expires).sign(key, hashes.SHA256()))
        CERTIFICATES.mkdir(parents=True, exist_ok=True)
        (CERTIFICATES / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (CERTIFICATES / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(CERTIFICATES / "cert.pem", CERTIFICATES / "key.pem")
        self.context = context

    def get_request(self):
        connection, address = super().get_request()
        return self.context.wrap_socket(connection, server_side=True), address

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_port}/hub/health"


def settings(receiver: Receiver | None) -> dict:
    """Monitoring on (with RECEIVER) and a scheduled backup of the admin's files; None: both off."""
    if receiver is None:
        return {"jupyterhub_monitoring_enabled": False, "jupyterhub_backup_schedule": "", "jupyterhub_backup_schedule_cron": "",
                "jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_metrics_dir": str(METRICS)}
    return {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_scrape_interval": "5s",
            "jupyterhub_monitoring_probe_urls": [MONITORING["site"].url],
            "jupyterhub_monitoring_alert_down_for": "10s", "jupyterhub_monitoring_textfile_dir": str(METRICS),
            "jupyterhub_monitoring_disk_paths": [str(BACKUPS)],
            "jupyterhub_monitoring_alert_receivers": [{"type": "webhook", "url": f"http://127.0.0.1:{receiver.server_port}/alerts"}],
            "jupyterhub_backup_schedule": "*-*-* 03:15:00", "jupyterhub_backup_schedule_cron": "15 3 * * *",
            "jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_metrics_dir": str(METRICS), "jupyterhub_backup_users": ["admin"]}


def site(name: str, extra_vars: dict) -> str:
    result = run_playbook("playbooks/site.yml", extra_vars, "--tags", "monitoring,backup")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"monitoring-{name}.log").write_text(result.stdout)
    assert result.returncode == 0 and recap(result.stdout)["failed"] == 0, result.stdout[-4000:]
    return result.stdout


def query(expr: str) -> list[dict]:
    answer = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def until(what: str, check, timeout: float = 90):
    """CHECK's first true result, asked every second; fails naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"{what}: not within {timeout} s")


def firing(name: str) -> list[dict]:
    alerts = requests.get(f"{PROMETHEUS}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [alert for alert in alerts if alert["labels"]["alertname"] == name and alert["state"] == "firing"]


def status_playbook(name: str) -> subprocess.CompletedProcess:
    result = run_playbook("playbooks/status.yml", settings(MONITORING["receiver"]))
    (OUTPUT / f"monitoring-status-{name}.log").write_text(result.stdout)
    return result


MONITORING: dict = {}


@pytest.fixture(scope="module")
def monitoring(deployed):  # noqa: F811 (the fixture imported above)
    """The monitoring and the schedule on, with the admin logged in; at the end, both off and their files gone."""
    for path in (BACKUPS, METRICS):
        shutil.rmtree(path, ignore_errors=True)
    receiver, site_ = Receiver(), HttpsSite()
    site_.use(days=90)
    for server in (receiver, site_):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    MONITORING.update(receiver=receiver, site=site_)
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    try:
        MONITORING["first"] = site("on", settings(receiver))
        yield {"admin": admin, "receiver": receiver, "site": site_}
    finally:
        for container in ("jupyterhub", "jupyterhub-proxy"):
            subprocess.run(["docker", "start", container], capture_output=True, check=False)
        site("off", settings(None))
        receiver.shutdown()
        site_.shutdown()
        shutil.rmtree(CERTIFICATES, ignore_errors=True)
        subprocess.run(["docker", "volume", "rm", "-f", "jupyterhub-monitoring-data"], check=True, capture_output=True)
        for path in (BACKUPS, METRICS):
            shutil.rmtree(path, ignore_errors=True)
    found = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True).stdout.split()
    assert not set(CONTAINERS) & set(found) and not CONFIG.exists()
    assert not Path("/etc/cron.d/jhub-docker-monitoring").exists() and not Path("/usr/local/lib/jhub-docker/jhub-firewall-metric").exists()


def test_every_target_answers_and_a_second_run_changes_nothing(monitoring):
    wanted = {"hub", "proxy", "node", "servers", "https", "blackbox", "prometheus", "alertmanager"}
    targets = until("every target up", lambda: (found := query("up == 1")) and {r["metric"]["job"] for r in found} == wanted and found)
    assert len(targets) == len(wanted)
    again = site("again", settings(monitoring["receiver"]))
    assert recap(again)["changed"] == 0, again[-3000:]
    # Loopback only; no capability, a read-only root; the servers' exporter is its container's root (it reads root's
    # files of the engine), the others are not.
    for container in CONTAINERS:
        config = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout)[0]
        assert config["Config"]["User"] == ("0:0" if container == "jupyterhub-server-metrics" else "10090:10090")
        assert config["HostConfig"]["CapDrop"] == ["ALL"] and "no-new-privileges" in config["HostConfig"]["SecurityOpt"]
        assert config["HostConfig"]["ReadonlyRootfs"] and config["HostConfig"]["NetworkMode"] == "host"
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    for port in (9090, 9093, 9100, 9101, 9115):
        assert re.search(rf"127\.0\.0\.1:{port}\s", listening) and not re.search(rf"(\*|0\.0\.0\.0|\[::\]):{port}\s", listening)
    # The token reads the metrics only.
    token = (CONFIG / "metrics.token").read_text().strip()
    assert requests.get(f"{URL}/hub/api/users", headers={"Authorization": f"token {token}"}, timeout=10).status_code == 403
    assert requests.get(f"{URL}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=10).status_code == 200
    assert oct((CONFIG / "metrics.token").stat().st_mode & 0o777) == "0o640"


def unit_tests(mounts: dict[str, str]) -> dict:
    """promtool's unit tests of the deployed rules (thresholds as the fixture sets them): each rule's series
    below and above its threshold."""
    disk = [{"series": f'node_filesystem_{kind}_bytes{{job="node", mountpoint="{mount}", instance="n"}}', "values": values}
            for mount in set(mounts.values()) for kind, values in (("size", "100x20"), ("avail", "50x5 10x15"))]
    return {
        "rule_files": ["/etc/jhub-monitoring/jhub.rules.yml"],
        "evaluation_interval": "5s",
        "tests": [
            {"interval": "5s",
             "input_series": [{"series": 'up{job="hub", instance="h", hub="x"}', "values": "1 0 0 0 0 1"},
                              {"series": 'up{job="proxy", instance="p", hub="x"}', "values": "1 1 0 0 0 0"}],
             "alert_rule_test": [
                 {"alertname": "HubDown", "eval_time": "10s", "exp_alerts": []},
                 {"alertname": "HubDown", "eval_time": "20s", "exp_alerts": [{"exp_labels": {
                     "severity": "critical", "job": "hub", "instance": "h", "hub": "x"},
                     "exp_annotations": {"summary": "JupyterHub does not answer on h."}}]},
                 {"alertname": "HubDown", "eval_time": "25s", "exp_alerts": []},
                 # The hub down as well: the proxy is not blamed; the hub back, it is.
                 {"alertname": "ProxyDown", "eval_time": "20s", "exp_alerts": []},
             ]},
            {"interval": "5s",
             "input_series": [{"series": 'up{job="hub", instance="h", hub="x"}', "values": "1x10"},
                              {"series": 'up{job="proxy", instance="p", hub="x"}', "values": "1 0x9"}],
             "alert_rule_test": [{"alertname": "ProxyDown", "eval_time": "5s", "exp_alerts": []},
                                 {"alertname": "ProxyDown", "eval_time": "20s", "exp_alerts": [{"exp_labels": {
                                     "severity": "critical", "job": "proxy", "instance": "p", "hub": "x"}, "exp_annotations": {
                                     "summary": "The proxy does not forward to the hub; users cannot reach JupyterHub or their servers."}}]}]},
            {"interval": "1m",
             "input_series": [
                 {"series": 'jupyterhub_server_spawn_duration_seconds_count{status="failure", hub="x"}', "values": "0 1 2 2 2 4"},
                 {"series": 'jupyterhub_server_spawn_duration_seconds_bucket{status="success", le="30", hub="x"}', "values": "0+10x30"},
                 {"series": 'jupyterhub_server_spawn_duration_seconds_bucket{status="success", le="120", hub="x"}', "values": "0+10x10 120+20x20"},
                 {"series": 'jupyterhub_server_spawn_duration_seconds_bucket{status="success", le="+Inf", hub="x"}', "values": "0+10x10 120+20x20"},
             ],
             "alert_rule_test": [
                 {"alertname": "SpawnsFailing", "eval_time": "4m", "exp_alerts": []},
                 {"alertname": "SpawnsFailing", "eval_time": "5m", "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "hub": "x"},
                     "exp_annotations": {"summary": "4 servers failed to start in the last 15m."}}]},
                 {"alertname": "SpawnsSlow", "eval_time": "10m", "exp_alerts": []},
                 {"alertname": "SpawnsSlow", "eval_time": "25m", "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "hub": "x"},
                     "exp_annotations": {"summary": "95 % of the servers started in the last 15m took up to 111 s (more than 60 s)."}}]}]},
            {"interval": "1m",
             "input_series": [
                 {"series": 'jhub_server_oom_kills_total{user="ann", server="", container="jupyter-ann", instance="s"}', "values": "0 0 0 1 1"},
                 {"series": 'jupyterhub_server_poll_duration_seconds_count{status="stopped", hub="x"}', "values": "0 0 0 0 2"},
                 {"series": 'jhub_firewall_rules_ok{instance="n"}', "values": "1 1 0 1"},
                 {"series": 'probe_success{job="https", instance="https://h/"}', "values": "1 0 0 0 0"},
                 # A certificate that expires at 15 days from the start: within 14 days after one day.
                 {"series": 'probe_ssl_earliest_cert_expiry{job="https", instance="https://h/"}', "values": "1296000x1500"},
                 # Checked every minute for 5 minutes, then no more.
                 {"series": 'jhub_firewall_check_timestamp_seconds{instance="n"}', "values": "0+60x5 300x10"}],
             "alert_rule_test": [
                 {"alertname": "ServerKilledForMemory", "eval_time": "2m", "exp_alerts": []},
                 {"alertname": "ServerKilledForMemory", "eval_time": "3m", "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "user": "ann", "container": "jupyter-ann", "instance": "s"},
                     "exp_annotations": {"summary": "ann's server ran out of memory: the kernel killed 1 of its processes in the last 15m."}}]},
                 {"alertname": "FirewallRulesMissing", "eval_time": "1m", "exp_alerts": []},
                 {"alertname": "FirewallRulesMissing", "eval_time": "2m", "exp_alerts": [{
                     "exp_labels": {"severity": "critical", "instance": "n"},
                     "exp_annotations": {"summary": "The user servers' firewall rules are not the deployed ones: servers may reach each"
                                                    " other, this host or the blocked destinations."}}]},
                 {"alertname": "FirewallRulesMissing", "eval_time": "3m", "exp_alerts": []},
                 {"alertname": "FirewallCheckStale", "eval_time": "10m", "exp_alerts": []},
                 {"alertname": "FirewallCheckStale", "eval_time": "11m", "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "instance": "n"},
                     "exp_annotations": {"summary": "The firewall has not been checked for 6m 0s (its timer or cron job does not run)."}}]},
                 {"alertname": "HttpsProbeFailing", "eval_time": "1m", "exp_alerts": []},
                 {"alertname": "HttpsProbeFailing", "eval_time": "3m", "exp_alerts": [{
                     "exp_labels": {"severity": "critical", "job": "https", "instance": "https://h/"},
                     "exp_annotations": {"summary": "https://h/ does not answer 200 over HTTPS."}}]},
                 {"alertname": "CertificateExpiring", "eval_time": "1430m", "exp_alerts": []},
                 {"alertname": "CertificateExpiring", "eval_time": "1450m", "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "job": "https", "instance": "https://h/"},
                     "exp_annotations": {"summary": "The certificate of https://h/ expires in 13d 23h 50m 0s (within 14 days)."}}]},
                 {"alertname": "ServersDied", "eval_time": "3m", "exp_alerts": []},
                 {"alertname": "ServersDied", "eval_time": "4m", "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "hub": "x"},
                     "exp_annotations": {"summary": "2 users' servers stopped by themselves in the last 15m."}}]}]},
            {"interval": "1m",
             "input_series": disk + [
                 {"series": 'jhub_backup_last_success_timestamp_seconds{instance="n"}', "values": "0x1600"},
                 {"series": 'jhub_backup_last_run_success{instance="n"}', "values": "1x10 0"}],
             "alert_rule_test": [
                 {"alertname": "DiskFilling", "eval_time": "8m", "exp_alerts": []},
                 {"alertname": "DiskFilling", "eval_time": "14m", "exp_alerts": [
                     {"exp_labels": {"severity": "warning", "path": path, "job": "node", "mountpoint": mount, "instance": "n"},
                      "exp_annotations": {"summary": f"The file system of {path} ({mount}) is 90 % full."}}
                     for path, mount in mounts.items()]},
                 {"alertname": "BackupStale", "eval_time": "1550m", "exp_alerts": []},
                 {"alertname": "BackupStale", "eval_time": "1570m", "exp_alerts": [{"exp_labels": {"severity": "warning", "instance": "n"},
                  "exp_annotations": {"summary": "The newest good backup is 1d 2h 10m 0s old (more than 26 hours)."}}]},
                 {"alertname": "BackupFailed", "eval_time": "10m", "exp_alerts": []},
                 {"alertname": "BackupFailed", "eval_time": "11m", "exp_alerts": [{"exp_labels": {"severity": "warning", "instance": "n"},
                  "exp_annotations": {"summary": "The last scheduled backup failed; its record says why."}}]},
             ]},
        ],
    }


def test_the_alert_rules_pass_their_unit_tests(monitoring, tmp_path):
    rules = yaml.safe_load((CONFIG / "jhub.rules.yml").read_text())["groups"][0]["rules"]
    mounts = {rule["labels"]["path"]: re.search(r'mountpoint="([^"]*)"', rule["expr"]).group(1) for rule in rules if rule["alert"] == "DiskFilling"}
    assert set(mounts) == {"/var/lib/docker", str(BACKUPS)}
    tested = {"HubDown", "ProxyDown", "SpawnsFailing", "SpawnsSlow", "DiskFilling", "BackupStale", "BackupFailed",
              "ServerKilledForMemory", "ServersDied", "FirewallRulesMissing", "FirewallCheckStale", "HttpsProbeFailing",
              "CertificateExpiring"}
    # Every rule but MonitoringTargetDown (the same expression as HubDown on other jobs) has its test here.
    assert {rule["alert"] for rule in rules} - tested == {"MonitoringTargetDown"}
    (tmp_path / "rules.test.yml").write_text(yaml.safe_dump(unit_tests(mounts)))
    tmp_path.chmod(0o755)
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0", "--cap-drop", "ALL",
                           "-v", f"{CONFIG}:/etc/jhub-monitoring:ro", "-v", f"{tmp_path}:/t:ro", IMAGE, "promtool", "test", "rules",
                           "/t/rules.test.yml"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def spawns() -> float:
    return sum(float(r["value"][1]) for r in query('jupyterhub_server_spawn_duration_seconds_count{status="success"}'))


def test_a_spawn_and_a_backup_move_their_metrics(monitoring):
    admin = monitoring["admin"]
    before = spawns()
    admin.start_server("admin")
    try:
        until("the spawn counted", lambda: spawns() >= before + 1, 60)
        until("the running server counted", lambda: query("jupyterhub_running_servers >= 1"), 60)
        # The server's own container, from the servers' exporter.
        assert until("the server's memory", lambda: query('jhub_server_memory_bytes{user="admin", server=""} > 10e6'), 60)
        assert until("the server's CPU", lambda: query('jhub_server_cpu_seconds_total{user="admin", container="jupyter-admin"} > 0'), 60)
    finally:
        admin.stop_server("admin")
    started = time.time()
    record = run_as_cron(cron_commands()[0])
    assert record["status"] == 0 and record["name"].startswith("jhub-backup-"), record
    found = until("the backup's figures", lambda: query(f"jhub_backup_last_success_timestamp_seconds > {started}"), 60)
    assert found[0]["metric"]["job"] == "node"
    assert float(query("jhub_backup_last_success_size_bytes")[0]["value"][1]) > 0
    assert not query('ALERTS{alertname=~"Backup.*"}')


def test_the_hub_down_fires_an_alert_that_reaches_the_receiver_and_resolves(monitoring):
    receiver = monitoring["receiver"]
    subprocess.run(["docker", "stop", "jupyterhub"], check=True, capture_output=True)
    try:
        alert = until("HubDown firing", lambda: firing("HubDown"), 90)
        assert alert[0]["labels"]["severity"] == "critical" and not firing("ProxyDown")
        posted = until("HubDown posted to the receiver", lambda: [
            n for n in receiver.notifications if n["status"] == "firing" and n["commonLabels"].get("alertname") == "HubDown"], 60)
        assert posted[0]["alerts"][0]["annotations"]["summary"].startswith("JupyterHub does not answer on")
    finally:
        subprocess.run(["docker", "start", "jupyterhub"], check=True, capture_output=True)
    assert healthy(120), "the hub does not answer again"
    until("HubDown resolved", lambda: not firing("HubDown") and query('up{job="hub"} == 1'), 90)


def firewall_check() -> list[dict]:
    """The firewall check's program run now, as cron runs it every minute; the metric once Prometheus has it."""
    subprocess.run(["/usr/local/lib/jhub-docker/jhub-firewall-metric"], check=True, timeout=60)
    stamp = float((METRICS / "jhub_firewall.prom").read_text().rsplit(" ", 1)[1])
    return until("the check's figures", lambda: query(f"jhub_firewall_check_timestamp_seconds >= {stamp}") and query("jhub_firewall_rules_ok"), 30)


def test_missing_firewall_rules_fire_an_alert_until_they_are_back(monitoring):
    assert firewall_check()[0]["value"][1] == "1"
    assert "* * * * * root /usr/local/lib/jhub-docker/jhub-firewall-metric" in Path("/etc/cron.d/jhub-docker-monitoring").read_text()
    subprocess.run(["iptables", "-w", "-F", "JHUB-FORWARD"], check=True)
    try:
        assert firewall_check()[0]["value"][1] == "0"
        until("FirewallRulesMissing firing", lambda: firing("FirewallRulesMissing"), 30)
    finally:
        subprocess.run(["/usr/local/sbin/jhub-network-isolation", "apply"], check=True, capture_output=True)
    assert firewall_check()[0]["value"][1] == "1"
    until("FirewallRulesMissing resolved", lambda: not firing("FirewallRulesMissing"), 30)


def test_every_dashboard_query_runs_and_reads_metrics_that_exist(monitoring):
    names = set(requests.get(f"{PROMETHEUS}/api/v1/label/__name__/values", timeout=10).json()["data"])
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    assert [path.name for path in dashboards] == ["jupyterhub-host.json", "jupyterhub.json"]
    checked = 0
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["title"] and dashboard["uid"] and dashboard["panels"], path
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h")
                done = subprocess.run(["docker", "exec", "jupyterhub-prometheus", "promtool", "query", "instant", PROMETHEUS, expr],
                                      capture_output=True, text=True, timeout=60, check=False)
                assert done.returncode == 0, f"{path.name}, {panel['title']}: {expr}: {done.stderr}"
                used = set(re.findall(r"\b(?:jupyterhub|jhub|node|process|up)\w*\b", expr)) - {"up"}
                used = {name for name in used if not name.startswith("jhub_docker")}
                missing = {name for name in used if name not in names and f"{name}_bucket" not in names}
                assert not missing, f"{path.name}, {panel['title']}: no metric {missing} in Prometheus"
                checked += 1
    assert checked >= 10


def test_the_status_command_says_all_is_well_and_fails_with_the_proxy_stopped(monitoring):
    fine = status_playbook("fine")
    assert fine.returncode == 0, fine.stdout[-3000:]
    for line in ("hub: up, JupyterHub 6.1.1", "proxy: up", "firewall: rules in place", "alerts: none firing", "all is well",
                 f"disk {BACKUPS}:"):
        assert line in fine.stdout, fine.stdout[-3000:]
    assert re.search(r"backup: newest good jhub-backup-\S+, 0\.\d hours old; last run good", fine.stdout), fine.stdout[-3000:]
    assert re.search(rf"certificate {re.escape(MONITORING['site'].url)}: expires in (89\.\d|90\.0) days", fine.stdout), fine.stdout[-3000:]
    subprocess.run(["docker", "stop", "jupyterhub-proxy"], check=True, capture_output=True)
    try:
        stopped = status_playbook("proxy-stopped")
    finally:
        subprocess.run(["docker", "start", "jupyterhub-proxy"], check=True, capture_output=True)
    assert stopped.returncode == 2, stopped.stdout[-3000:]
    assert "proxy: DOWN" in stopped.stdout and "The proxy does not forward to the hub at" in stopped.stdout, stopped.stdout[-3000:]
    assert healthy(60), "the hub does not answer through the proxy again"


def test_a_server_killed_for_memory_fires_an_alert(monitoring):
    """A container with the user-server label and a memory limit of 64 MiB, whose Python takes 256 MiB: the kernel
    kills it and the shell lives on, as a notebook's kernel dies and its server lives on. Last: the alert fires for
    the window (15 minutes) after the kill."""
    subprocess.run(["docker", "rm", "-f", "jhub-test-oom"], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", "jhub-test-oom", "--network", "none", "--memory", "64m", "--memory-swap", "64m",
                    "--label", "io.jhub-docker.role=user-server", "-e", "JUPYTERHUB_USER=oom-test", "--entrypoint", "sh", NOTEBOOK, "-c",
                    "sleep 12; python3 -c 'x = bytearray(256 << 20)'; sleep 600"], check=True, capture_output=True)
    try:
        until("the container scraped before the kill", lambda: query('jhub_server_oom_kills_total{user="oom-test"} == 0'), 30)
        until("the kill counted", lambda: query('jhub_server_oom_kills_total{user="oom-test"} >= 1'), 60)
        alert = until("ServerKilledForMemory firing", lambda: firing("ServerKilledForMemory"), 60)
        assert alert[0]["labels"]["user"] == "oom-test" and alert[0]["labels"]["container"] == "jhub-test-oom"
        assert query('jhub_server_memory_limit_bytes{user="oom-test"} == 67108864')
    finally:
        subprocess.run(["docker", "rm", "-f", "jhub-test-oom"], check=True, capture_output=True)


def test_a_certificate_near_its_end_fires_an_alert(monitoring):
    """The probed site's certificate: read as it is (90 days left); replaced by one of 3 days, CertificateExpiring fires.
    Last: it fires until the certificate changes again."""
    site_ = monitoring["site"]
    assert query('probe_success{job="https"} == 1')
    left = float(query('probe_ssl_earliest_cert_expiry{job="https"}')[0]["value"][1])
    assert left == site_.expires.timestamp()
    site_.use(days=3)
    until("the new certificate probed", lambda: query(f'probe_ssl_earliest_cert_expiry{{job="https"}} == {site_.expires.timestamp()}'), 30)
    alert = until("CertificateExpiring firing", lambda: firing("CertificateExpiring"), 30)
    assert alert[0]["labels"]["instance"] == site_.url and "expires in 2d 23h" in alert[0]["annotations"]["summary"]
