"""Profiles: the spawn options a user chooses from (an image, memory and CPU limits, GPUs), each open to
everyone or to some JupyterHub groups; and default limits per group.

Configured from jupyterhub_config.py (JhubDockerSpawner and JhubSwarmSpawner take both)::

    c.JhubDockerSpawner.profiles = [
        {"name": "small", "display_name": "Small", "description": "For the exercises",
         "image": "jhub-docker/notebook:6.1.1", "mem_limit": "1G", "cpu_limit": 0.5},
        {"name": "gpu", "display_name": "GPU", "image": "...", "gpus": "all", "groups": ["lab"]},
    ]
    c.JhubDockerSpawner.group_limits = {"project-week": {"mem_limit": "4G", "cpu_limit": 2.0}}

The spawn page lists the profiles open to the user (none is listed, and no page shown, when only one
is); the first open one is the default. The REST API takes ``{"profile": "<name>"}``. A profile the
user may not use is refused with the hub's message, before anything starts.

Limits: a profile's own limit; else the largest limit among the user's groups' ``group_limits`` (the
more generous group wins); else the spawner's ``mem_limit`` and ``cpu_limit``.

Shared volumes, mounted in the servers of everyone or of some groups' members (volumes that exist: the
role makes them)::

    c.JhubDockerSpawner.shared_volumes = [
        {"name": "jhub-shared-datasets", "path": "/home/jovyan/work/datasets", "mode": "ro", "groups": []},
        {"name": "jhub-shared-thesis", "path": "/home/jovyan/work/thesis", "mode": "rw", "groups": ["thesis"]},
    ]

Named servers: the names of a server's own objects (the container or service, the user's volumes,
the node record; each a template with ``{username}``) get ``--{servername}`` after them for a named
server; the default server keeps its names. Escaped names never hold "--" (DockerSpawner escapes "-"
as "-2d"), so "USER--SERVER" is no other user's or server's name.
"""

from __future__ import annotations

import html

from docker.errors import APIError
from traitlets import Dict, List, default
from traitlets.config import LoggingConfigurable

from jhub_docker.slots import start_failed

# Docker's error when a device request finds no driver for it (no GPU, or no NVIDIA container toolkit).
NO_GPU = "could not select device driver"


def size_bytes(size: str | int) -> int:
    """Bytes of a Docker size such as 512M or 2G (a plain number is bytes)."""
    text = str(size).strip().lower().rstrip("b")
    factor = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}.get(text[-1:], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def open_to(profiles: list[dict], groups: set[str]) -> list[dict]:
    """The profiles that members of these groups may use: those without groups, and those of a group."""
    return [profile for profile in profiles if not profile.get("groups") or groups & set(profile["groups"])]


def choose(profiles: list[dict], groups: set[str], name: str | None) -> dict:
    """The profile to start: the one named, or the first open one; refused with the hub's message."""
    allowed = open_to(profiles, groups)
    if name is None or name == "":
        if not allowed:
            raise start_failed(403, "No profile is open to you: ask the hub's admin to add you to a group.")
        return allowed[0]
    named = [profile for profile in profiles if profile["name"] == name]
    if not named:
        raise start_failed(400, f"There is no profile '{name}'. Profiles: {', '.join(p['name'] for p in allowed)}.")
    if named[0] not in allowed:
        raise start_failed(403, f"The profile '{name}' is for the groups {', '.join(named[0]['groups'])}, and you are in none of them.")
    return named[0]


def limits(profile: dict | None, groups: set[str], group_limits: dict[str, dict]) -> dict:
    """{mem_limit, cpu_limit} that the profile or the user's groups set (a key is missing when neither does)."""
    found = {}
    for key, measure in (("mem_limit", size_bytes), ("cpu_limit", float)):
        if profile and profile.get(key) is not None:
            found[key] = profile[key]
            continue
        values = [group_limits[group][key] for group in sorted(groups) if group_limits.get(group, {}).get(key) is not None]
        if values:
            found[key] = max(values, key=measure)
    return found


def own_name(template: str, server: str) -> str:
    """A template of a user's own object (one with {username}); for a named server, with --{servername} after it."""
    if server and "{username}" in template and "{servername}" not in template:
        return template + "--{servername}"
    return template


def device_requests(gpus: str | int | None) -> list[dict]:
    """Docker's device requests for a profile's GPUs: all of them ("all"), or a number."""
    if not gpus:
        return []
    return [{"Driver": "", "Count": -1 if gpus == "all" else int(gpus), "Capabilities": [["gpu"]]}]


class ProfilesMixin(LoggingConfigurable):
    """Profiles and group limits for JhubDockerSpawner and JhubSwarmSpawner; put it first in the bases."""

    profiles = List(
        Dict(),
        config=True,
        help="""Spawn options: [{name, display_name, description, image, mem_limit, cpu_limit, gpus, groups}].

        Empty: one kind of server, with the spawner's own image and limits.
        """,
    )

    group_limits = Dict(
        config=True,
        help="Default limits of a group's members: {group: {mem_limit, cpu_limit}}; the largest of a user's groups wins.",
    )

    shared_volumes = List(
        Dict(),
        config=True,
        help="""Volumes mounted in the servers of everyone or of some groups: [{name, path, mode, groups}].

        mode: ro (the default) or rw; groups: empty for everyone, or the JupyterHub groups whose members get it.
        """,
    )

    profile: dict | None = None
    # The image, limits and host config of the configuration, before any profile (set at the first start).
    _configured: dict | None = None

    def user_groups(self) -> set[str]:
        return {group.name for group in self.user.groups}

    @default("object_name")
    def _object_name_default(self):
        # DockerSpawner's, with a named server's name after the user's (own_name).
        return self._render_templates(own_name(self.name_template, self.name))

    @default("options_form")
    def _default_options_form(self):
        # Without profiles, DockerSpawner's own form (a choice among allowed_images, when there are several).
        return self.profiles_form if self.profiles else super()._default_options_form()

    def profiles_form(self, _spawner) -> str:
        """The spawn page's choice: the profiles open to the user ("" for one or none: no page)."""
        allowed = open_to(self.profiles, self.user_groups())
        if len(allowed) < 2:
            return ""
        rows = []
        for index, profile in enumerate(allowed):
            sizes = [f"{profile['mem_limit']} memory" if profile.get("mem_limit") else "",
                     f"{profile['cpu_limit']:g} CPU" if profile.get("cpu_limit") else "",
                     f"{profile['gpus']} GPU" if profile.get("gpus") else ""]
            details = ", ".join(size for size in sizes if size)
            rows.append(
                '<div class="radio"><label>'
                f'<input type="radio" name="profile" value="{html.escape(profile["name"])}"{" checked" if index == 0 else ""}> '
                f'<strong>{html.escape(profile.get("display_name") or profile["name"])}</strong>'
                f'{" - " + html.escape(profile["description"]) if profile.get("description") else ""}'
                f'{" (" + html.escape(details) + ")" if details else ""}'
                "</label></div>"
            )
        return "\n".join(rows)

    @default("options_from_form")
    def _default_options_from_form(self):
        if not self.profiles:
            return super()._default_options_from_form()

        def options_from_form(formdata: dict) -> dict:
            return {"profile": formdata.get("profile", [""])[0]}
        return options_from_form

    def apply_profile(self) -> None:
        """Set the image, the limits and the GPUs of the chosen profile and the user's groups, over the
        configured ones (a spawner serves many starts: nothing of an earlier start's profile stays)."""
        if self._configured is None:
            self._configured = {key: getattr(self, key) for key in ("image", "mem_limit", "cpu_limit", "extra_host_config", "volumes")}
        for key, value in self._configured.items():
            setattr(self, key, value)
        groups = self.user_groups()
        self.profile = choose(self.profiles, groups, self.user_options.get("profile")) if self.profiles else None
        if self.profile is not None:
            self.image = self.profile["image"]
            # DockerSpawner takes an image from user_options only among allowed_images; a profile's is set here.
            self.user_options = {key: value for key, value in self.user_options.items() if key != "image"}
            self.extra_host_config = {**self.extra_host_config, "device_requests": device_requests(self.profile.get("gpus"))}
        for key, value in limits(self.profile, groups, self.group_limits).items():
            setattr(self, key, value)
        volumes = {own_name(source, self.name): target for source, target in self._configured["volumes"].items()}
        for shared in open_to(self.shared_volumes, groups):
            volumes[shared["name"]] = {"bind": shared["path"], "mode": shared.get("mode") or "ro"}
        self.volumes = volumes

    async def start(self):
        self.apply_profile()
        try:
            return await super().start()
        except APIError as error:
            if NO_GPU not in str(error):
                raise
            await self.remove_object()  # the container was made; it cannot start here
            raise start_failed(
                503,
                f"The profile '{self.profile['name'] if self.profile else ''}' asks for GPUs, and this host has none that"
                f" Docker can give (no GPU, or no NVIDIA container toolkit): {error.explanation or error}."
                " Choose another profile.",
            ) from None
