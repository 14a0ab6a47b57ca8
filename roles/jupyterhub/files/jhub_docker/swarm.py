"""JhubSwarmSpawner does what jhub_docker.spawner.JhubDockerSpawner does, on top of dockerspawner's
SwarmSpawner: each server is a Docker Swarm service, on any node of the swarm. It works without IPVS in the kernel, where a service's
virtual IP and the routing mesh do not: services have endpoint mode ``dnsrr``, and the hub goes
to the server at its task's own address on ``network_name`` (an attachable overlay network). A
volume whose source is not an absolute path is a named volume (SwarmSpawner makes every volume a
bind mount). DockerSpawner's ``extra_host_config`` does not apply to services, so the security
settings are settings of their own::

    c.JupyterHub.spawner_class = "jhub_docker.swarm.JhubSwarmSpawner"
    c.JhubSwarmSpawner.network_name = "jhub"
    c.JhubSwarmSpawner.cap_drop = ["ALL"]
    c.JhubSwarmSpawner.pids_limit = 512
    c.JhubSwarmSpawner.no_new_privileges = True
    c.JhubSwarmSpawner.placement_constraints = ["node.role == worker"]

A user's files are in a named volume (the role's ``jupyterhub-user-{username}``), and a named volume
is local to the node where the task ran: JhubSwarmSpawner keeps each user's server on one node. The
first start leaves the choice of the node to the swarm's scheduler (it spreads the tasks over the
nodes and honours the resource reservations); once the task runs, the node is recorded in the
user's Docker Swarm config object, named by ``node_record_template`` (``jhub-node-{username}``): its
data is the node's ID, its labels ``io.jhub-docker.user`` and ``io.jhub-docker.node-hostname`` the
user's name and the node's hostname. A config belongs to the swarm, not to the hub: it outlives
the hub's restarts, re-deploys and the loss of its database, ``docker config ls`` lists them, and
moving a user to another node is replacing the config (with the files moved). Every later start
adds ``node.id == <ID>`` to the service's placement constraints, and is refused, with a message to
the user naming the node, while that node is not ready, is drained or paused, or has left the
swarm::

    c.JhubSwarmSpawner.node_record_template = "jhub-node-{username}"

Where every node reaches the same files, there is no node to keep to: with SwarmSpawner's
``volume_driver`` set (a driver whose volumes every node mounts, e.g. Docker's ``local`` driver with
NFS options), named volumes get that driver and ``volume_driver_options``, with ``{username}`` in
the options' values replaced as in DockerSpawner's other templates, and no node record is read or
written::

    c.JhubSwarmSpawner.volume_driver = "local"
    c.JhubSwarmSpawner.volume_driver_options = {
        "type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4.1", "device": ":/export/jupyterhub/{username}"
    }

The ``c.JhubDockerSpawner.*`` settings above are ``c.JhubSwarmSpawner.*`` settings there, and the
``c.SwarmSpawner.*`` and ``c.DockerSpawner.*`` settings apply to it as well. The start slots are
the same for both classes.
"""

from __future__ import annotations

import base64
import re

from docker.errors import APIError
from docker.types import DriverConfig, Mount
from docker.utils import version_lt
from dockerspawner import SwarmSpawner
from traitlets import Bool, Integer, List, Unicode, default

from jhub_docker.profiles import ProfilesMixin, own_name
from jhub_docker.spawner import JhubSpawnerMixin, start_failed

# The Docker Engine API version that first takes each of JhubSwarmSpawner's security settings for a
# service: an engine of an older API ignores the setting without a word.
SERVICE_SETTING_API = {"cap_drop": "1.41", "pids_limit": "1.41", "no_new_privileges": "1.44"}

# The labels of a user's node record (a swarm config): the user's name and the recorded node's hostname.
RECORD_USER_LABEL = "io.jhub-docker.user"
RECORD_HOSTNAME_LABEL = "io.jhub-docker.node-hostname"
# What Docker takes as a config's name.
CONFIG_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
CONFIG_NAME_MAX = 64


class JhubSwarmSpawner(ProfilesMixin, JhubSpawnerMixin, SwarmSpawner):
    """SwarmSpawner with JhubDockerSpawner's additions, for a swarm without service virtual IPs,
    with named volumes, and with the security settings DockerSpawner has in extra_host_config.

    A user's server is kept on the node of its first start (node_record_template), unless
    volume_driver is set: a volume driver is for volumes that every node of the swarm mounts
    (SwarmSpawner's volume_driver), so any node can take the server.
    """

    cap_drop = List(
        Unicode(),
        config=True,
        help="""Capabilities the server's container drops, e.g. ["ALL"] (the service's ContainerSpec
        CapabilityDrop).""",
    )

    pids_limit = Integer(
        0,
        min=0,
        config=True,
        help="""Most processes in the server's container (the service's Resources Limits Pids); 0: no limit.""",
    )

    no_new_privileges = Bool(
        False,
        config=True,
        help="""Whether the server's processes run with no_new_privs: setuid programs give no privileges
        (the service's ContainerSpec Privileges NoNewPrivileges; Docker Engine API 1.44, Docker 25.0).""",
    )

    placement_constraints = List(
        Unicode(),
        config=True,
        help="""Placement constraints of the server's service, e.g. "node.role == worker".

        Rendered like DockerSpawner's other templates: {username} is the user's escaped name.
        """,
    )

    node_record_template = Unicode(
        "jhub-node-{username}",
        config=True,
        help="""Name of the swarm config object that records the node of the user's server.

        Rendered like DockerSpawner's other templates: {username} is the user's escaped name. The
        user's files are in a named volume on the node where the server ran, so every start after
        the first goes to that node (placement constraint node.id == <ID>), and is refused while the
        node is not ready, not active (drained or paused), or gone from the swarm. The first start
        goes where the swarm's scheduler puts it, and the node is then recorded: the config's data
        is the node's ID, its labels io.jhub-docker.user (the user's name) and
        io.jhub-docker.node-hostname (the node's hostname). Replacing the config moves the user's
        next start to another node. A Docker config name: letters, digits, "_", "." and "-",
        starting with a letter or a digit, at most 64 characters.

        Unused with volume_driver set: every node mounts the same data, no record is read or
        written, and the scheduler chooses among all the nodes at every start.
        """,
    )

    # The ID of the node the current start is kept on (from the user's node record); None: the
    # scheduler chooses. Set by create_object, cleared when the start is over.
    _recorded_node: str | None = None

    @default("extra_endpoint_spec")
    def _default_extra_endpoint_spec(self) -> dict:
        # No virtual IP (it needs IPVS): the hub reaches the task's own address, see get_ip_and_port.
        return {"mode": "dnsrr"}

    @property
    def node_affinity(self) -> bool:
        """Whether the user's server is kept on the node of its first start: without volume_driver,
        a named volume is local to its node; with one, every node mounts the same data."""
        return not self.volume_driver

    @property
    def mount_driver_config(self) -> DriverConfig | None:
        """SwarmSpawner's, with {username} in volume_driver_options' values replaced by the user's
        escaped name (DockerSpawner's templates), so that each user's volume has its own data."""
        if not self.volume_driver:
            return None
        options = {key: own_name(value, self.name) for key, value in self.volume_driver_options.items()}
        return DriverConfig(name=self.volume_driver, options=self._render_templates(options) or None)

    @property
    def mounts(self) -> list[Mount]:
        """The volumes as service mounts: a host path (absolute) is a bind, anything else a named volume.

        SwarmSpawner makes every one a bind, which fails for a volume name.
        """
        driver = self.mount_driver_config  # volume_driver's, options rendered, for the user's own volumes only
        shared = {volume["name"] for volume in self.shared_volumes}  # made on every node by the role, with their own options
        mounts = []
        for source, volume in self.volume_binds.items():
            read_only = volume["mode"] == "ro"
            if source.startswith("/"):
                mounts.append(Mount(volume["bind"], source, type="bind", read_only=read_only))
            else:
                mounts.append(Mount(volume["bind"], source, type="volume", read_only=read_only,
                                    driver_config=None if source in shared else driver))
        return mounts

    def _docker(self, method: str, *args, **kwargs):
        # SwarmSpawner.create_object builds the service's spec and creates the service in one go:
        # the settings its spec classes have no parameter for are added to that call's spec here.
        if method == "create_service":
            self._add_service_settings(kwargs["task_template"])
        return super()._docker(method, *args, **kwargs)

    def _add_service_settings(self, task_template: dict) -> None:
        """Add the security settings, the placement constraints and the restart policy to a
        service's task template.

        Added to what the extra_*_spec settings put there; the dicts of the configuration are
        copied, not changed. The restart policy is "none" unless extra_task_spec gives one: the
        swarm would otherwise restart a task whose node went down on another node, where the
        user's volume is a new, empty one (and the hub would still address the old task). A
        server that stops stays stopped, as a container of DockerSpawner does, until the user
        starts it again through the hub.
        """
        api = self.client.api_version
        for name, version in SERVICE_SETTING_API.items():
            if getattr(self, name) and version_lt(api, version):
                raise RuntimeError(
                    f"{name} needs Docker Engine API {version} or later: the engine speaks {api}, and would ignore it"
                )
        task_template.setdefault("RestartPolicy", {"Condition": "none"})
        container = task_template["ContainerSpec"]
        if self.cap_drop:
            container["CapabilityDrop"] = [*container.get("CapabilityDrop", []), *self.cap_drop]
        if self.no_new_privileges:
            container["Privileges"] = {**container.get("Privileges", {}), "NoNewPrivileges": True}
        if self.pids_limit:
            resources = task_template.get("Resources", {})
            limits = {**resources.get("Limits", {}), "Pids": self.pids_limit}
            task_template["Resources"] = {**resources, "Limits": limits}
        constraints = self._render_templates(self.placement_constraints)
        if self._recorded_node:
            # Where the user's files are, see create_object.
            constraints = [*constraints, f"node.id == {self._recorded_node}"]
        if constraints:
            placement = task_template.get("Placement", {})
            constraints = [*placement.get("Constraints", []), *constraints]
            task_template["Placement"] = {**placement, "Constraints": constraints}

    @property
    def node_record_name(self) -> str:
        """The name of the swarm config that records the node of the user's server."""
        name = self._render_templates(own_name(self.node_record_template, self.name))
        if not CONFIG_NAME.fullmatch(name) or len(name) > CONFIG_NAME_MAX:
            raise RuntimeError(
                f"node_record_template gives {name!r}, which is no Docker config name"
                f" ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most {CONFIG_NAME_MAX} characters)"
            )
        return name

    async def _read_node_record(self) -> tuple[str, str] | None:
        """The recorded node's ID and hostname (its label's, "" without one); None without a record."""
        try:
            record = await self.docker("inspect_config", self.node_record_name)
        except APIError as e:
            if e.response is not None and e.response.status_code == 404:
                return None
            raise
        spec = record["Spec"]
        # The engine gives the data base64-encoded; one written from a file may end in a newline.
        node_id = base64.b64decode(spec.get("Data") or "").decode().strip()
        if not node_id:
            raise RuntimeError(f"The node record {spec['Name']} holds no node ID")
        hostname = (spec.get("Labels") or {}).get(RECORD_HOSTNAME_LABEL, "")
        return node_id, hostname

    async def _inspect_node(self, node_id: str) -> dict | None:
        """The node as the engine describes it; None when it is not in the swarm."""
        try:
            return await self.docker("inspect_node", node_id)
        except APIError as e:
            if e.response is not None and e.response.status_code == 404:
                return None
            raise

    async def create_object(self):
        """Create the service on the user's recorded node, if there is one and it can take it.

        A node that is not ready, not active, or gone from the swarm refuses the start with a
        message to the user: the files are there, a server elsewhere would have an empty home.
        Without node_affinity no record is read: the scheduler chooses among all the nodes.
        """
        self._recorded_node = None
        record = await self._read_node_record() if self.node_affinity else None
        if record is not None:
            node_id, hostname = record
            node = await self._inspect_node(node_id)
            if node is None:
                status = "it is no longer in the swarm"
            else:
                hostname = node.get("Description", {}).get("Hostname") or hostname
                state = node.get("Status", {}).get("State", "unknown")
                availability = node.get("Spec", {}).get("Availability", "unknown")
                status = f"its state is {state}, its availability {availability}"
                if (state, availability) == ("ready", "active"):
                    status = None  # it can take the server
            if status is not None:
                raise start_failed(
                    503,
                    f"Your server cannot start now: your files are on node {hostname or node_id}, and"
                    f" {status}. Your server can start when that node is back: ask the administrator.",
                )
            self._recorded_node = node_id
            self.log.info(
                "Starting %s's server on node %s (%s), where the files are", self.user.name, hostname, node_id
            )
        return await super().create_object()

    async def start_object(self) -> None:
        """Wait until the task runs; on a first start with node_affinity, record the node it runs on."""
        try:
            await super().start_object()
            if self.node_affinity and self._recorded_node is None:
                task = await self.get_task()
                await self._record_node(task["NodeID"])
        finally:
            self._recorded_node = None

    async def _record_node(self, node_id: str) -> None:
        """Record node_id as the user's node, unless a record appeared meanwhile: then it must be the same."""
        name = self.node_record_name
        node = await self._inspect_node(node_id) or {}
        hostname = node.get("Description", {}).get("Hostname", "")
        labels = {RECORD_USER_LABEL: self.user.name, RECORD_HOSTNAME_LABEL: hostname}
        try:
            await self.docker("create_config", name, node_id.encode(), labels=labels)
        except APIError as e:
            if e.response is None or e.response.status_code != 409:
                raise
            # Another start recorded a node between our reading and now: its record stands.
            record = await self._read_node_record()
            if record is None:
                raise RuntimeError(f"The node record {name} appeared while this start wrote it, and is gone again") from e
            recorded_id, recorded_hostname = record
            if recorded_id != node_id:
                raise start_failed(
                    409,
                    f"Your server started on node {hostname or node_id}, but your files are recorded on node"
                    f" {recorded_hostname or recorded_id} (by another start at the same moment)."
                    " Start your server again: it will start on that node.",
                ) from e
            self.log.info("Node record %s already names node %s (%s)", name, hostname, node_id)
            return
        self.log.info("Recorded node %s (%s) for %s's server in config %s", hostname, node_id, self.user.name, name)

    async def get_ip_and_port(self) -> tuple[str, int]:
        """The running task's own address on network_name, and the server's port.

        The service has no virtual IP (endpoint mode dnsrr). With use_internal_hostname (as with
        internal_ssl) it is the service's name, as in SwarmSpawner: with dnsrr the name resolves
        to the task's address.
        """
        if self.use_internal_hostname:
            return await super().get_ip_and_port()
        task = await self.get_task()
        for attachment in (task or {}).get("NetworksAttachments") or []:
            addresses = attachment.get("Addresses") or []
            if attachment["Network"]["Spec"]["Name"] == self.network_name and addresses:
                return addresses[0].split("/")[0], self.port  # "10.0.1.5/24"
        raise RuntimeError(
            f"The task of service {self.service_name} has no address on network {self.network_name!r}"
            " (network_name: an overlay network the hub is attached to)"
        )
