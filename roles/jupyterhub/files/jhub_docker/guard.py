"""An authorizing proxy between the hub and the Docker engine: the hub's only way to Docker.

The hub runs third-party code (authenticators, the spawner, their dependencies) and faces the
internet. With the engine's socket, code run in the hub owns the host (a privileged container
that mounts ``/`` is one call away). This proxy listens on a socket of its own, which only the hub
mounts, and forwards to the engine only the calls that a user server's life needs, judged on the
request itself (its method, its path and its body):

- a container or swarm service is created only as a user server: an image from the policy, the
  user-volume naming (and the shared volumes), the hub network, the collection's hardening, the
  user-server label, and nothing that reaches the host (no privilege, capability added, host bind,
  host namespace, device but the GPUs that profiles allow, port published);
- a container or service is started, stopped, inspected, waited on, read or removed only when it
  carries the user-server label;
- volumes are created and inspected only by the user-volume naming, without driver options beyond
  the configured ones (a local volume with ``o=bind`` would be a host bind);
- a swarm config is created, read or removed only by the node-record naming;
- the engine's version, info and ping, the swarm's nodes and tasks are read.

Everything else gets ``403`` with a message (and a log line) that names the rule. The policy is data,
JSON that the jupyterhub role makes from its variables and gives in the environment (so that a
rolled-back hub gets its own policy back with its container)::

    JHUB_DOCKER_GUARD_POLICY='{"images": [...], "network": "jupyterhub", ...}' \\
    python3 -m jhub_docker.guard --listen /run/jhub-docker-guard/docker.sock --engine /var/run/docker.sock

The standard library only: the proxy holds the engine's socket, and carries as little code as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

LOG = logging.getLogger("jhub-docker-guard")
# A user server's label: the spawners set it; the proxy acts only on containers and services that carry it.
LABEL = "io.jhub-docker.role"
LABEL_VALUE = "user-server"
# What a request may be: the head, and a body with a length.
MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
NAME_PART = "[A-Za-z0-9][A-Za-z0-9_.-]*"
POLICY_ENV = "JHUB_DOCKER_GUARD_POLICY"


class Refused(Exception):
    """A request that the policy does not allow; ``rule`` names the rule that refused it."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


def naming(template: str) -> re.Pattern:
    """The names that a DockerSpawner template ({username}, {servername}, {prefix}) gives, a named
    server's ``--SERVER`` after the user's included."""
    pattern = re.escape(template)
    for key in ("username", "servername", "prefix"):
        pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P<{key}>{NAME_PART})", 1)
        pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P={key})")
    return re.compile(f"{pattern}(--{NAME_PART})?")


def reference(image: str) -> str:
    """An image reference with its implied tag (``name`` is ``name:latest``), as the engine reads it."""
    if "@" in image or ":" in image.rsplit("/", 1)[-1]:
        return image
    return f"{image}:latest"


@dataclass
class Policy:
    """What the hub may do (the JSON file's keys)."""

    images: list[str]
    network: str
    container: str  # the user containers' (and services') name template
    volume: str  # the user volumes' name template
    shared_volumes: list[str] = field(default_factory=list)
    node_record: str = ""  # the swarm config name template of a user's node record ("" without)
    cap_drop: list[str] = field(default_factory=list)
    no_new_privileges: bool = True
    pids_limit: int = 0
    gpus: bool = False
    volume_driver_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.container_re = naming(self.container)
        self.volume_re = naming(self.volume)
        self.node_record_re = naming(self.node_record) if self.node_record else None

    @classmethod
    def from_json(cls, text: str) -> "Policy":
        return cls(**json.loads(text))

    # --- the parts of a request body -------------------------------------------------------

    def image(self, image: str | None, rule: str) -> None:
        if reference(image or "") not in {reference(allowed) for allowed in self.images}:
            raise Refused(rule, f"image {image!r} is not one of the notebook images {self.images}")

    def volume_source(self, source: str, rule: str) -> None:
        if source.startswith("/") or not (self.volume_re.fullmatch(source) or source in self.shared_volumes):
            raise Refused(rule, f"{source!r} is neither a user volume ({self.volume}) nor a shared volume")

    def labels(self, labels: dict | None, rule: str) -> None:
        if (labels or {}).get(LABEL) != LABEL_VALUE:
            raise Refused(rule, f"no label {LABEL}={LABEL_VALUE}")

    def capabilities(self, drop: list | None, add: list | None, rule: str) -> None:
        if add:
            raise Refused(rule, f"capabilities added: {add}")
        missing = [cap for cap in self.cap_drop if cap not in (drop or [])]
        if missing:
            raise Refused(rule, f"capabilities not dropped: {missing}")

    def pids(self, limit: int | None, rule: str) -> None:
        if self.pids_limit and not 0 < (limit or 0) <= self.pids_limit:
            raise Refused(rule, f"process limit {limit} is not within 1 to {self.pids_limit}")

    def driver_options(self, options: dict | None, user: str, rule: str) -> None:
        expected = {key: value.replace("{username}", user) for key, value in self.volume_driver_options.items()}
        if options and options != expected:
            raise Refused(rule, f"volume driver options {options} are not the configured ones")

    def server_name(self, name: str, rule: str) -> str:
        """The user of a user server's name (a container's or a service's)."""
        match = self.container_re.fullmatch(name)
        if not match:
            raise Refused(rule, f"name {name!r} is not a user server's ({self.container})")
        return match.group("username")

    def image_user(self, user: str | None, rule: str) -> None:
        if user not in (None, ""):
            raise Refused(rule, f"user {user!r} (a user server runs as its image's user)")

    def mounts(self, mounts: list | None, user: str, rule: str) -> None:
        """A container's or a service's mounts: tmpfs, or user and shared volumes by Docker's local driver,
        with the configured driver options only."""
        for mount in mounts or []:
            if mount.get("Type") == "tmpfs":
                continue
            if mount.get("Type") != "volume":
                raise Refused(rule, f"mount {mount.get('Source')!r} of type {mount.get('Type')!r} (only volumes)")
            self.volume_source(mount.get("Source") or "", rule)
            driver = (mount.get("VolumeOptions") or {}).get("DriverConfig") or {}
            if driver.get("Name") not in (None, "", "local"):
                raise Refused(rule, f"volume driver {driver['Name']!r}")
            self.driver_options(driver.get("Options"), user, rule)

    # --- the requests ----------------------------------------------------------------------

    def container_create(self, query: dict, body: dict) -> None:
        rule = "container create"
        user = self.server_name(query.get("name", ""), rule)
        unknown = sorted(set(body) - CONTAINER_KEYS)
        if unknown:
            raise Refused(rule, f"settings not allowed: {unknown}")
        self.image_user(body.get("User"), rule)
        self.image(body.get("Image"), rule)
        self.labels(body.get("Labels"), rule)
        host = body.get("HostConfig") or {}
        unknown = sorted(key for key, value in host.items() if key not in HOST_KEYS and (value or key in EMPTY_MEANS))
        if unknown:
            raise Refused(rule, f"host settings not allowed: {unknown}")
        if host.get("NetworkMode") != self.network:
            raise Refused(rule, f"network {host.get('NetworkMode')!r} is not the hub network {self.network!r}")
        for bind in host.get("Binds") or []:
            self.volume_source(bind.split(":", 1)[0], rule)
        self.mounts(host.get("Mounts"), user, rule)
        self.capabilities(host.get("CapDrop"), host.get("CapAdd"), rule)
        wanted = ["no-new-privileges"] if self.no_new_privileges else []
        if sorted(host.get("SecurityOpt") or []) != wanted:
            raise Refused(rule, f"security options {host.get('SecurityOpt')} are not {wanted}")
        self.pids(host.get("PidsLimit"), rule)
        self.device_requests(host.get("DeviceRequests"), rule)
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if set(endpoints) - {self.network}:
            raise Refused(rule, f"networks {sorted(endpoints)} are not the hub network {self.network!r}")
        # A fixed address could be the hub's or the proxy's, which the firewall lets through.
        fixed = sorted({key for endpoint in endpoints.values() for key in (endpoint or {}) if key in FIXED_ADDRESS})
        if fixed:
            raise Refused(rule, f"a fixed address on the hub network: {fixed}")

    def device_requests(self, requests: list | None, rule: str) -> None:
        for request in requests or []:
            gpu = request.get("Capabilities") == [["gpu"]] and request.get("Driver") in ("", "nvidia")
            if not (self.gpus and gpu and not request.get("Options")):
                raise Refused(rule, f"device request {request} (only the GPUs of a profile that has them)")

    def volume_create(self, body: dict) -> None:
        rule = "volume create"
        name = body.get("Name") or ""
        match = self.volume_re.fullmatch(name)
        if not match:
            raise Refused(rule, f"name {name!r} is not a user volume's ({self.volume})")
        if body.get("Driver") not in (None, "", "local"):
            raise Refused(rule, f"driver {body['Driver']!r}")
        self.driver_options(body.get("DriverOpts"), match.group("username"), rule)

    def service_create(self, body: dict) -> None:
        rule = "service create"
        user = self.server_name(body.get("Name") or "", rule)
        self.labels(body.get("Labels"), rule)
        if (body.get("EndpointSpec") or {}).get("Ports"):
            raise Refused(rule, "published ports")
        task = body.get("TaskTemplate") or {}
        if task.get("Runtime") not in (None, "", "container"):
            raise Refused(rule, f"runtime {task['Runtime']!r}")
        spec = task.get("ContainerSpec") or {}
        unknown = sorted(key for key, value in spec.items() if key not in SERVICE_CONTAINER_KEYS and value)
        if unknown:
            raise Refused(rule, f"container settings not allowed: {unknown}")
        self.image_user(spec.get("User"), rule)
        self.image(spec.get("Image"), rule)
        privileges = spec.get("Privileges") or {}
        if set(privileges) - {"NoNewPrivileges"} or privileges.get("NoNewPrivileges", False) != self.no_new_privileges:
            raise Refused(rule, f"privileges {privileges}")
        self.capabilities(spec.get("CapabilityDrop"), spec.get("CapabilityAdd"), rule)
        self.pids(((task.get("Resources") or {}).get("Limits") or {}).get("Pids"), rule)
        if ((task.get("Resources") or {}).get("Reservations") or {}).get("GenericResources") and not self.gpus:
            raise Refused(rule, "generic resources (only the GPUs of a profile that has them)")
        self.mounts(spec.get("Mounts"), user, rule)
        networks = [network.get("Target") for network in task.get("Networks") or body.get("Networks") or []]
        if set(networks) - {self.network}:
            raise Refused(rule, f"networks {networks} are not the hub network {self.network!r}")

    def user_server(self, found: dict) -> bool:
        """Whether a container or service (the engine's inspection of it) is a user server: it has the
        label, or it was started by a hub before the label (jhub.docker 0.3.0 and earlier): a user
        server's name, and the environment that only a hub gives (JupyterHub's API address)."""
        spec = found.get("Config") or ((found.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        labels = found.get("Config", found.get("Spec", {})).get("Labels") or {}
        if labels.get(LABEL) == LABEL_VALUE:
            return True
        name = (found.get("Name") or (found.get("Spec") or {}).get("Name") or "").lstrip("/")
        env = spec.get("Env") or []
        return bool(self.container_re.fullmatch(name)) and any(item.startswith("JUPYTERHUB_API_URL=") for item in env)

    def config_name(self, name: str, rule: str) -> None:
        if not (self.node_record_re and self.node_record_re.fullmatch(name)):
            raise Refused(rule, f"config {name!r} is not a node record ({self.node_record or 'none kept'})")


# The keys of a container's create body that a user server may have (Docker Engine API), beside the
# ones judged on their own (Image, Labels, HostConfig, NetworkingConfig, User).
CONTAINER_KEYS = {
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "Labels", "StopSignal", "StopTimeout", "HostConfig", "NetworkingConfig",
}
FIXED_ADDRESS = {"IPAMConfig", "IPAddress", "IPv6Address", "GlobalIPv6Address", "MacAddress"}
# The host settings that a user server may have set; any other one set is refused: Privileged, PidMode,
# IpcMode, UTSMode, UsernsMode, CgroupParent, Devices, PortBindings, VolumesFrom, Sysctls, MaskedPaths, and
# LogConfig (a log driver's address makes the engine connect from the host's network) or OomScoreAdj
# (a server that the kernel never kills for memory).
HOST_KEYS = {
    "Binds", "Mounts", "NetworkMode", "CapDrop", "CapAdd", "SecurityOpt", "PidsLimit", "DeviceRequests",
    "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuQuota", "CpuPeriod", "CpuShares",
    "AutoRemove", "RestartPolicy", "ShmSize", "Tmpfs", "Init", "ReadonlyRootfs", "Dns", "DnsOptions",
    "DnsSearch", "ExtraHosts", "Ulimits", "Links",
}
# Host settings whose empty value means something (no masked paths: /proc's kernel files exposed).
EMPTY_MEANS = {"MaskedPaths", "ReadonlyPaths"}
# The same for a service's container spec.
SERVICE_CONTAINER_KEYS = {
    "Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Mounts", "StopSignal",
    "StopGracePeriod", "Healthcheck", "Hosts", "DNSConfig", "Privileges", "CapabilityDrop", "CapabilityAdd",
    "Init", "Tty", "OpenStdin", "ReadOnly", "Isolation", "Ulimits",
}


@dataclass
class Request:
    method: str
    path: str  # without the API version
    query: dict
    body: dict


# (method, path pattern, what to judge): the only calls that reach the engine. "label" and "record"
# look the object up first (GET .../json) and need the user-server label, or a node record's name.
ROUTES = [
    ("GET", r"/_ping|/version|/info", "read"),
    ("HEAD", r"/_ping", "read"),
    ("POST", r"/containers/create", "container_create"),
    ("GET", r"/containers/(?P<id>[^/]+)/(json|logs)", "container_label"),
    ("POST", r"/containers/(?P<id>[^/]+)/(start|stop|wait|kill)", "container_label"),
    ("DELETE", r"/containers/(?P<id>[^/]+)", "container_label"),
    ("GET", r"/images/(?P<id>.+)/json", "image"),
    ("POST", r"/images/create", "image_pull"),
    ("POST", r"/volumes/create", "volume_create"),
    ("GET", r"/volumes/(?P<id>[^/]+)", "volume"),
    ("POST", r"/services/create", "service_create"),
    ("GET", r"/services/(?P<id>[^/]+)", "service_label"),
    ("DELETE", r"/services/(?P<id>[^/]+)", "service_label"),
    ("GET", r"/tasks|/tasks/[^/]+|/nodes|/nodes/[^/]+", "read"),
    ("POST", r"/configs/create", "config_create"),
    ("GET", r"/configs/(?P<id>[^/]+)", "config_record"),
    ("DELETE", r"/configs/(?P<id>[^/]+)", "config_record"),
]
VERSION = re.compile(r"/v[0-9]+\.[0-9]+(?=/)")


def route(method: str, path: str) -> tuple[str, dict]:
    """The judgement a request gets, and its path's parts; Refused for a call that is not allowed."""
    for allowed, pattern, judge in ROUTES:
        match = re.fullmatch(pattern, path)
        if match and method == allowed:
            return judge, {key: unquote(value) for key, value in match.groupdict().items()}
    raise Refused("calls", f"{method} {path} is not a call that the hub makes")


class Guard:
    """Judges requests with a policy; reads the objects that a judgement needs from the engine."""

    def __init__(self, policy: Policy, engine: str):
        self.policy = policy
        self.engine = engine

    async def inspect(self, kind: str, ident: str) -> dict | None:
        """The engine's view of one object (None when it has none)."""
        path = f"/{kind}/{quote(ident, safe='')}" + ("/json" if kind == "containers" else "")
        status, body = await engine_call(self.engine, "GET", path)
        if status == 404:
            return None
        if status != 200:
            raise Refused("lookup", f"the engine answered {status} for {kind} {ident!r}")
        return json.loads(body)

    async def judge(self, request: Request) -> None:
        """Return when the policy allows the request; raise Refused otherwise."""
        judge, parts = route(request.method, request.path)
        policy = self.policy
        if judge == "read":
            return
        if judge == "container_create":
            policy.container_create(request.query, request.body)
        elif judge == "service_create":
            policy.service_create(request.body)
        elif judge == "volume_create":
            policy.volume_create(request.body)
        elif judge == "volume":
            policy.volume_source(parts["id"], "volume")
        elif judge == "image":
            policy.image(parts["id"], "image")
        elif judge == "image_pull":
            image, tag = request.query.get("fromImage", ""), request.query.get("tag")
            if tag and not (":" in image.rsplit("/", 1)[-1] or "@" in image):
                image = f"{image}{'@' if tag.startswith('sha256:') else ':'}{tag}"
            policy.image(image, "image pull")
        elif judge == "config_create":
            policy.config_name(request.body.get("Name") or "", "config")
        elif judge == "config_record":
            found = await self.inspect("configs", parts["id"])
            if found is not None:
                policy.config_name(found["Spec"]["Name"], "config")
        else:  # container_label, service_label
            kind = "containers" if judge == "container_label" else "services"
            found = await self.inspect(kind, parts["id"])
            if found is not None and not policy.user_server(found):
                raise Refused(kind[:-1], f"{parts['id']!r} is not a user server (no label {LABEL}={LABEL_VALUE})")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: requests one after the other, each on its own connection to the engine."""
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    return
                request_line, headers, raw_head = head
                method, target, _version = request_line.split(" ", 2)
                split = urlsplit(target)
                path = VERSION.sub("", split.path, count=1) if VERSION.match(split.path) else split.path
                query = {key: values[-1] for key, values in parse_qs(split.query).items()}
                try:
                    if "transfer-encoding" in headers:
                        raise Refused("body", "a body without Content-Length")
                    length = int(headers.get("content-length", "0"))
                    if not 0 <= length <= MAX_BODY:
                        raise Refused("body", f"a body of {length} bytes")
                    body = await reader.readexactly(length) if length else b""
                    try:
                        parsed = json.loads(body) if body else {}
                    except ValueError:
                        raise Refused("body", "a body that is not JSON") from None
                    await self.judge(Request(method, path, query, parsed if isinstance(parsed, dict) else {}))
                except Refused as refused:
                    LOG.warning("refused (%s): %s %s: %s", refused.rule, method, path, refused.reason)
                    message = json.dumps({"message": f"jhub-docker-guard refused ({refused.rule}): {refused.reason}"})
                    writer.write(
                        f"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {len(message)}\r\n\r\n"
                        .encode() + message.encode()
                    )
                    await writer.drain()
                    continue
                LOG.info("%s %s", method, path)
                await forward(self.engine, raw_head, body, writer)
                return  # the engine closed after its answer; so does the proxy
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as error:
            LOG.debug("connection ended: %s", error)
        finally:
            writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict, bytes] | None:
    """A request's line, its headers (lower-case names) and its raw head; None at the connection's end."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    except asyncio.LimitOverrunError:
        raise ValueError("request head too long") from None
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers, raw


def closing_head(raw: bytes) -> bytes:
    """A head with "Connection: close" in place of any Connection header."""
    lines = raw.decode("latin-1").split("\r\n")
    kept = [line for line in lines[:-2] if not line.lower().startswith("connection:")]
    return ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")


async def forward(engine: str, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    """Send the request to the engine and its answer back, until the engine closes."""
    up_reader, up_writer = await asyncio.open_unix_connection(engine)
    try:
        up_writer.write(closing_head(head) + body)
        await up_writer.drain()
        answer = await up_reader.readuntil(b"\r\n\r\n")
        writer.write(closing_head(answer))
        while chunk := await up_reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        up_writer.close()


async def engine_call(engine: str, method: str, path: str) -> tuple[int, bytes]:
    """One call to the engine without a body: its status and body."""
    reader, writer = await asyncio.open_unix_connection(engine)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, body = raw.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return status, body


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jhub-docker-guard", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--listen", required=True, help="the socket to listen on (made again at each start)")
    parser.add_argument("--engine", default="/var/run/docker.sock", help="the engine's socket")
    parser.add_argument("--group", type=int, help="the group that may use the socket (mode 0660)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    guard = Guard(Policy.from_json(os.environ[POLICY_ENV]), args.engine)
    if os.path.exists(args.listen):
        os.unlink(args.listen)
    server = await asyncio.start_unix_server(guard.serve, args.listen, limit=MAX_HEAD)
    os.chmod(args.listen, 0o660)
    if args.group is not None:
        os.chown(args.listen, -1, args.group)
    LOG.info("listening on %s for %s", args.listen, args.engine)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
