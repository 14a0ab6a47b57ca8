#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: hub_status
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.3.0
short_description: The state of a JupyterHub deployment that an operator asks for first, and what is wrong with it
description:
  - Reads, on the hub's host, what playbooks/status.yml prints - the hub's API and the proxy (the hub's health page
    through the proxy's public port, as Prometheus scrapes them), the users' servers (ready or pending, and each
    container's memory from its cgroup), the newest good scheduled backup and its age, the use of the watched file
    systems, the user-server firewall's own check, and from Prometheus the probed HTTPS certificates' expiry and
    the alerts that it has firing.
  - Changes nothing. It does not fail when something is wrong - it returns RV(problems), one message each, so that
    the playbook prints everything before it fails.
options:
  api_url:
    description: The hub's API as the host reaches it (C(http://HOST:8081/hub/api)).
    type: str
    required: true
  token_file:
    description: File on the host with a token that may list users and read their servers (the operations service's).
    type: path
    required: true
  proxy_url:
    description: The proxy's public port as the host reaches it (C(http://HOST:8000)).
    type: str
    required: true
  backup_record:
    description: The scheduled backup's record (C(ROOT/last-run.json)); empty - backups are not scheduled here.
    type: path
    default: ""
  backup_max_age_hours:
    description: The newest good backup may be this old.
    type: int
    default: 26
  disk_paths:
    description: Paths whose file systems are checked for space.
    type: list
    elements: path
    default: []
  disk_used_percent:
    description: A file system fuller than this is a problem.
    type: float
    default: 85
  firewall_command:
    description: The user-server firewall's check (exit 0 - the rules are in place, 3 - they are not); empty - none.
    type: list
    elements: str
    default: []
  prometheus_url:
    description: Prometheus's address (C(http://127.0.0.1:9090)); empty - no monitoring here.
    type: str
    default: ""
  certificate_days:
    description: A probed certificate that expires within this many days is a problem.
    type: int
    default: 14
  server_label:
    description: The label of users' servers' containers (name=value).
    type: str
    default: io.jhub-docker.role=user-server
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode too.
"""

EXAMPLES = r"""
- name: Read the deployment's state
  jhub.docker.hub_status:
    api_url: http://172.31.252.2:8081/hub/api
    token_file: /srv/jupyterhub/secrets/ops.token
    proxy_url: http://172.31.252.3:8000
    backup_record: /var/backups/jhub-docker/last-run.json
    disk_paths: [/var/lib/docker, /var/backups/jhub-docker]
    firewall_command: [/usr/local/sbin/jhub-network-isolation, check]
    prometheus_url: http://127.0.0.1:9090
  register: status
"""

RETURN = r"""
hub:
  description: C(ok), the hub's C(version), or the C(error).
  returned: always
  type: dict
proxy:
  description: C(ok), or the C(error).
  returned: always
  type: dict
servers:
  description: Each user's server - C(user), C(name), C(ready), C(pending) (spawn or stop), C(started), C(last_activity).
  returned: always
  type: list
  elements: dict
containers:
  description: Each user-server container on this host - C(name) and C(memory_bytes) (without the page cache; null when unread).
  returned: always
  type: list
  elements: dict
backup:
  description: C(scheduled), and the newest good backup's C(name), C(ended) (Unix time), C(age_hours); the last run's C(success) and C(error).
  returned: always
  type: dict
disks:
  description: Each path - C(path), C(used_percent), C(free_bytes).
  returned: always
  type: list
  elements: dict
firewall:
  description: C(checked), C(ok), and the check's C(output).
  returned: always
  type: dict
certificates:
  description: Each HTTPS URL that Prometheus probes - C(url), C(ok) (it answered 200), C(days_left); C(null) without monitoring.
  returned: always
  type: list
  elements: dict
alerts:
  description: The alerts that Prometheus has firing - C(name), C(summary), C(since); C(null) without monitoring.
  returned: always
  type: list
  elements: dict
problems:
  description: What is wrong, one message each; empty when all is well.
  returned: always
  type: list
  elements: str
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.hub_api import HubApi, HubApiError

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, timeout: float = 10):
    """(HTTP status, body) of a GET, or (None, the error)."""
    try:
        with NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return None, str(getattr(error, "reason", error))


def memory_bytes(container_id: str):
    """A container's memory without the page cache, as `docker stats` counts it, from its cgroup (v1 or v2)."""
    for base, usage, stat, cache in (
        (f"/sys/fs/cgroup/memory/docker/{container_id}", "memory.usage_in_bytes", "memory.stat", "total_inactive_file"),
        (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope", "memory.current", "memory.stat", "inactive_file"),
        (f"/sys/fs/cgroup/docker/{container_id}", "memory.current", "memory.stat", "inactive_file"),
    ):
        try:
            with open(os.path.join(base, usage), encoding="ascii") as handle:
                used = int(handle.read())
            with open(os.path.join(base, stat), encoding="ascii") as handle:
                figures = dict(line.split() for line in handle if line.strip())
        except (OSError, ValueError):
            continue
        return max(used - int(figures.get(cache, 0)), 0)
    return None


def hub_and_servers(params, problems):
    hub, servers = {"ok": False}, []
    status, body = fetch(params["api_url"].rstrip("/") + "/")
    if status == 200:
        hub = {"ok": True, "version": json.loads(body).get("version")}
    else:
        hub["error"] = f"HTTP {status}" if status else body
        problems.append(f"The hub does not answer at {params['api_url']}: {hub['error']}.")
        return hub, servers
    try:
        with open(params["token_file"], encoding="utf-8") as handle:
            api = HubApi(params["api_url"], handle.read(), timeout=30)
        offset = 0
        while True:
            _status, page = api.call("GET", f"/users?state=active&limit=200&offset={offset}", paged=True)
            for user in page["items"]:
                for name, server in sorted((user.get("servers") or {}).items()):
                    servers.append({"user": user["name"], "name": name, "ready": bool(server.get("ready")),
                                    "pending": server.get("pending"), "started": server.get("started"),
                                    "last_activity": server.get("last_activity")})
            offset += 200
            if offset >= page["_pagination"]["total"]:
                break
    except (HubApiError, OSError, KeyError, ValueError) as error:
        problems.append(f"The hub's servers could not be listed: {error}")
    return hub, servers


def containers(module, label):
    code, out, _err = module.run_command(["docker", "ps", "--no-trunc", "--filter", f"label={label}", "--format", "{{.ID}} {{.Names}}"])
    if code != 0:
        return []
    return [{"name": name, "memory_bytes": memory_bytes(cid)} for cid, name in (line.split(" ", 1) for line in out.splitlines() if line)]


def backup(params, problems):
    if not params["backup_record"]:
        return {"scheduled": False}
    try:
        with open(params["backup_record"], encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        problems.append(f"Backups are scheduled, and none has run yet ({params['backup_record']} does not exist).")
        return {"scheduled": True}
    except (OSError, ValueError) as error:
        problems.append(f"The backup record {params['backup_record']} cannot be read: {error}")
        return {"scheduled": True}
    found = {"scheduled": True, "success": bool(record.get("success")), "error": record.get("error"),
             "name": record.get("last_success_name"), "ended": record.get("last_success_ended")}
    if not found["success"]:
        problems.append(f"The last scheduled backup failed: {found['error']}")
    if found["ended"] is None:
        problems.append("No scheduled backup has succeeded yet.")
    else:
        found["age_hours"] = round((time.time() - found["ended"]) / 3600, 1)
        if found["age_hours"] > params["backup_max_age_hours"]:
            problems.append(f"The newest good backup ({found['name']}) is {found['age_hours']} hours old,"
                            f" more than {params['backup_max_age_hours']}.")
    return found


def disks(params, problems):
    found = []
    for path in params["disk_paths"]:
        where = path
        while not os.path.exists(where):
            where = os.path.dirname(where)
        figures = os.statvfs(where)
        used = 100.0 * (1 - figures.f_bavail / figures.f_blocks) if figures.f_blocks else 0.0
        found.append({"path": path, "used_percent": round(used, 1), "free_bytes": figures.f_bavail * figures.f_frsize})
        if used > params["disk_used_percent"]:
            problems.append(f"The file system of {path} is {used:.0f} % full, more than {params['disk_used_percent']:g} %.")
    return found


def firewall(module, params, problems):
    if not params["firewall_command"]:
        return {"checked": False}
    code, out, err = module.run_command(params["firewall_command"])
    found = {"checked": True, "ok": code == 0, "output": (out + err).strip()}
    if code != 0:
        problems.append(f"The user servers' firewall rules are not in place ({' '.join(params['firewall_command'])}: exit {code}).")
    return found


def prometheus(params, path):
    """The data of a Prometheus API answer, or (None, the error)."""
    status, body = fetch(params["prometheus_url"].rstrip("/") + path)
    if status != 200:
        return None, f"HTTP {status}" if status else body
    return json.loads(body)["data"], None


def certificates(params, problems):
    if not params["prometheus_url"]:
        return None
    found = []
    for query in ("probe_success", "probe_ssl_earliest_cert_expiry"):
        data, _error = prometheus(params, "/api/v1/query?query=" + urllib.parse.quote(query + '{job="https"}'))
        for result in (data or {}).get("result", []):
            url = result["metric"].get("instance", "")
            entry = next((item for item in found if item["url"] == url), None) or {"url": url, "ok": False, "days_left": None}
            if entry not in found:
                found.append(entry)
            if query == "probe_success":
                entry["ok"] = result["value"][1] == "1"
            else:
                entry["days_left"] = round((float(result["value"][1]) - time.time()) / 86400, 1)
    for entry in found:
        if not entry["ok"]:
            problems.append(f"{entry['url']} does not answer 200 over HTTPS.")
        elif entry["days_left"] is not None and entry["days_left"] < params["certificate_days"]:
            problems.append(f"The certificate of {entry['url']} expires in {entry['days_left']} days.")
    return found


def alerts(params, problems):
    if not params["prometheus_url"]:
        return None
    data, error = prometheus(params, "/api/v1/alerts")
    if error:
        problems.append(f"Prometheus does not answer at {params['prometheus_url']}: {error}.")
        return []
    firing = [{"name": alert["labels"].get("alertname"), "summary": alert.get("annotations", {}).get("summary", ""),
               "since": alert.get("activeAt")} for alert in data["alerts"] if alert.get("state") == "firing"]
    problems.extend(f"Alert {alert['name']} is firing: {alert['summary']}" for alert in firing)
    return firing


def main() -> None:
    module = AnsibleModule(
        argument_spec={"api_url": {"type": "str", "required": True}, "token_file": {"type": "path", "required": True},
                       "proxy_url": {"type": "str", "required": True},
                       "backup_record": {"type": "path", "default": ""}, "backup_max_age_hours": {"type": "int", "default": 26},
                       "disk_paths": {"type": "list", "elements": "path", "default": []},
                       "disk_used_percent": {"type": "float", "default": 85},
                       "firewall_command": {"type": "list", "elements": "str", "default": []},
                       "prometheus_url": {"type": "str", "default": ""}, "certificate_days": {"type": "int", "default": 14},
                       "server_label": {"type": "str", "default": "io.jhub-docker.role=user-server"}},
        supports_check_mode=True,
    )
    params = module.params
    problems: list[str] = []
    hub, servers = hub_and_servers(params, problems)
    status, body = fetch(params["proxy_url"].rstrip("/") + "/hub/health")
    proxy = {"ok": status == 200} if status == 200 else {"ok": False, "error": f"HTTP {status}" if status else body}
    if hub["ok"] and not proxy["ok"]:
        problems.append(f"The proxy does not forward to the hub at {params['proxy_url']}: {proxy['error']}.")
    module.exit_json(changed=False, hub=hub, proxy=proxy, servers=servers, containers=containers(module, params["server_label"]),
                     backup=backup(params, problems), disks=disks(params, problems), firewall=firewall(module, params, problems),
                     certificates=certificates(params, problems), alerts=alerts(params, problems), problems=problems)


if __name__ == "__main__":
    main()
