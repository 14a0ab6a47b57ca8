"""Bad input: each role must refuse it with a message that names the variable, and change nothing.

The cases of one playbook run as the hosts of one run (conftest.run_cases): each case is a host of its
own (this machine, by a local connection) with the case's variables, and each must fail on one task with
its own message and change nothing; the machine's state is compared before and after all the runs. The
cases that need an inventory of their own, or a playbook whose first play stops every host at the first
failure (site.yml, swarm.yml), run one at a time.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from collections import defaultdict

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import OUTPUT, SWARM_GROUPS, host_state, local_inventory, recap, run_cases, run_playbook

# Shared volumes on an NFS server, as docs/scale-out.md shows them.
NFS = {"type": "nfs", "o": "addr=10.0.0.5", "device": ":/export/{username}"}
# Files of the cases (damaged backups, certificates), made by the fixture below before any run.
FILES = OUTPUT / "bad-input-files"

# A login method's complete input, which each case below breaks in one way.
OIDC = {"jupyterhub_auth_method": "oidc", "jupyterhub_auth_oidc": {"issuer": "https://id.example.org"}, "jupyterhub_auth_client_id": "hub",
        "jupyterhub_auth_client_secret": "a-secret", "jupyterhub_auth_allowed_groups": ["jupyter-users"]}
LDAP = {"jupyterhub_auth_method": "ldap", "jupyterhub_auth_allowed_groups": ["jupyter-users"],
        "jupyterhub_auth_ldap": {"url": "ldaps://ldap.example.org", "user_search_base": "ou=people,dc=example,dc=org",
                                 "group_search_base": "ou=groups,dc=example,dc=org"}}

# A profile of the default notebook image, which each case below breaks in one way.
PROFILE = {"name": "small", "image": "jhub-docker/notebook:6.1.1", "mem_limit": "512M", "cpu_limit": 0.5}

CASES = [
    # (playbook, the case's variables, words its error must contain)
    ("playbooks/docker_engine.yml", {"docker_engine_source": "snap"}, ["docker_engine_source", "docker, distro"]),
    ("playbooks/docker_engine.yml", {"docker_engine_channel": "nightly"}, ["docker_engine_channel"]),
    ("playbooks/docker_engine.yml", {"docker_engine_daemon_options": "live-restore=true"}, ["docker_engine_daemon_options", "dict"]),
    ("playbooks/docker_engine.yml", {"docker_engine_wait_timeout": "soon"}, ["docker_engine_wait_timeout", "int"]),
    (
        "playbooks/docker_engine.yml",
        {"docker_engine_image_archives": [{"path": "/nonexistent/images/busybox.tar", "name": "busybox:1"}]},
        ["docker_engine_image_archives[0].path", "/nonexistent/images/busybox.tar", "is not a file"],
    ),
    (
        "playbooks/docker_engine.yml",
        {"docker_engine_image_archives": [{"path": "/etc/hostname", "name": "Not A Valid/Image!"}]},
        ["docker_engine_image_archives", "Not A Valid/Image!", "not a valid image reference"],
    ),
    (
        "playbooks/docker_engine.yml",
        {"docker_engine_image_archives": [{"name": "busybox:1"}]},
        ["docker_engine_image_archives", "path"],
    ),
    ("playbooks/docker_engine.yml", {"docker_engine_users": ["no-such-user-jhub"]}, ["docker_engine_users", "no-such-user-jhub", "no such account"]),
    (
        "playbooks/jupyterhub.yml",
        {"jupyterhub_spawner_placement_constraints": ["node.role == worker"]},
        ["jupyterhub_spawner_placement_constraints places", "jhub_spawner is docker"],
    ),
    (
        "playbooks/jupyterhub.yml",
        {"jhub_user_volume_driver_options": NFS},
        ["jhub_user_volume_driver_options makes the volumes of swarm services", "jhub_spawner is docker"],
    ),
    ("playbooks/base_image.yml", {"base_image_variant": "tiny"}, ["base_image_variant", "minbase, buildd, standard"]),
    ("playbooks/base_image.yml", {"base_image_name": "Jhub/Debian Base"}, ["base_image_name", "not a valid image reference"]),
    ("playbooks/base_image.yml", {"base_image_name": "jhub/debian:bad:tag"}, ["base_image_name", "not a valid image reference"]),
    ("playbooks/base_image.yml", {"image_build_work_dir": "relative/dir"}, ["image_build_work_dir must be an absolute path", "relative/dir"]),
    ("playbooks/base_image.yml", {"base_image_mirror": "deb.debian.org/debian"}, ["base_image_mirror"]),
    ("playbooks/base_image.yml", {"base_image_packages": ["python3", "rm -rf /"]}, ["base_image_packages", "rm -rf /"]),
    ("playbooks/base_image.yml", {"base_image_cmd": []}, ["base_image_cmd must not be empty"]),
    ("playbooks/base_image.yml", {"base_image_cmd": {"run": "bash"}}, ["base_image_cmd", "list"]),
    ("playbooks/base_image.yml", {"base_image_env": {"NOT-VALID": "x"}}, ["base_image_env", "NOT-VALID"]),
    ("playbooks/notebook_images.yml", {"jhub_notebook_images": []}, ["jhub_notebook_images is empty"]),
    (
        "playbooks/notebook_images.yml",
        {"jhub_notebook_images": [{"name": "jhub/nb:1", "source": "build"}, {"name": "jhub/nb:1", "source": "pull"}]},
        ["jhub_notebook_images[0].name", "listed 2 times"],
    ),
    ("playbooks/notebook_images.yml", {"jhub_notebook_images": [{"name": "Jhub/NB"}]}, ["jhub_notebook_images[0].name", "not a valid image reference"]),
    ("playbooks/notebook_images.yml", {"jhub_notebook_images": [{"name": "jhub/nb:1", "source": "ftp"}]}, ["jhub_notebook_images", "source", "pull, build"]),
    ("playbooks/notebook_images.yml", {"jhub_ca_bundle": "/nonexistent/corporate-ca.pem"},
     ["jhub_ca_bundle", "/nonexistent/corporate-ca.pem", "is not a file"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_admin_password": ""}, ["jupyterhub_admin_password is required", "missing"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_admin_password": "short"}, ["jupyterhub_admin_password is required", "too short"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_port": 70000}, ["jupyterhub_port must be 1-65535", "70000"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_port": "http"}, ["jupyterhub_port", "int"]),
    # An address Docker would misread: a wrong one must not turn into "every interface".
    ("playbooks/jupyterhub.yml", {"jupyterhub_bind_address": "999.1.1.1"}, ["jupyterhub_bind_address must be an IP address", "999.1.1.1"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_bind_address": "localhost"}, ["jupyterhub_bind_address must be an IP address", "localhost"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_bind_address": ""}, ["jupyterhub_bind_address must be an IP address", "(got '')"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_authenticator": {"open_sigup": True}}, ["jupyterhub_authenticator.open_sigup", "open_signup"]),
    ("playbooks/jupyterhub.yml", {"jhub_registry_free": "true"}, ["jhub_registry_free must be true or false, not the str 'true'"]),
    (
        "playbooks/jupyterhub.yml",
        {"jhub_user_container": "jupyter-user"},
        ["jhub_user_container must hold {username}", "jupyter-user"],
    ),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_mem_limit": "2 gigs"}, ["jupyterhub_spawner_mem_limit", "2 gigs"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_mem_limit": "64k"}, ["jupyterhub_spawner_mem_limit must be a size of at least 128M", "64k"]),
    ("playbooks/jupyterhub.yml", {"jhub_pip_index_url": "pypi.mirror.internal/simple"},
     ["jhub_pip_index_url must be empty or an http(s) URL", "pypi.mirror.internal/simple"]),
    ("playbooks/jupyterhub.yml", {"jhub_jupyterhub_version": "4.1.6"},
     ["jhub_jupyterhub_version 4.1.6 is not a JupyterHub this collection deploys", "6.1 and 5.5 series"]),
    # NativeAuthenticator 1.2.0 under JupyterHub 6: the compatibility layer is made for 1.3.0's handlers.
    ("playbooks/jupyterhub.yml", {"jupyterhub_nativeauthenticator_version": "1.2.0"},
     ["jupyterhub_nativeauthenticator_version 1.2.0 is not proven under JupyterHub 6.1.1"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_upgrade_backup_root": "backups"},
     ["jupyterhub_upgrade_backup_root must be an absolute path other than /", "(got 'backups')"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_upgrade_backups_kept": -1}, ["jupyterhub_upgrade_backups_kept must be 0 or more", "-1"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_log_level": "LOUD"}, ["jupyterhub_log_level", "DEBUG, INFO"]),
    (
        "playbooks/jupyterhub.yml",
        {"jupyterhub_services": [{"name": "monitoring", "api_token": "too-short"}]},
        ["jupyterhub_services", "monitoring", "at least 32 characters"],
    ),
    # Logging in: each refused before the hub's configuration is written.
    ("playbooks/jupyterhub.yml", {"jupyterhub_auth_method": "saml"}, ["jupyterhub_auth_method", "native, oidc, github"]),
    ("playbooks/jupyterhub.yml", {**OIDC, "jupyterhub_auth_oidc": {}}, ["jupyterhub_auth_oidc.issuer is required"]),
    ("playbooks/jupyterhub.yml", {**OIDC, "jupyterhub_auth_client_secret": ""}, ["needs the OAuth client", "jupyterhub_auth_client_secret missing"]),
    ("playbooks/jupyterhub.yml", {**OIDC, "jupyterhub_auth_client_id": ""}, ["needs the OAuth client", "jupyterhub_auth_client_id missing"]),
    ("playbooks/jupyterhub.yml", {**OIDC, "jupyterhub_auth_oidc": {"issuer": "http://id.example.org"}},
     ["jupyterhub_auth_oidc.issuer http://id.example.org is plain http", "jupyterhub_auth_insecure_transport"]),
    # An issuer that does not answer: its discovery document is read before anything changes.
    ("playbooks/jupyterhub.yml", {**OIDC, "jupyterhub_auth_oidc": {"issuer": "https://127.0.0.1:9"}},
     ["jupyterhub_auth_oidc.issuer https://127.0.0.1:9", "no OpenID Connect discovery document"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_ldap": {**LDAP["jupyterhub_auth_ldap"], "url": "ldap://ldap.example.org", "starttls": False}},
     ["jupyterhub_auth_ldap.url is ldap:// with starttls false", "jupyterhub_auth_insecure_transport"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_ldap": {**LDAP["jupyterhub_auth_ldap"], "url": "ldap.example.org"}},
     ["jupyterhub_auth_ldap.url must be ldaps://host[:port]", "ldap.example.org"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_allowed_groups": ["jupyter-users", 5]}, ["lists of names (strings)", "[5]"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_allowed_groups": [], "jupyterhub_auth_allowed_users": []},
     ["jupyterhub_auth_method is ldap, and nobody would get in"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_oidc": {"issuer": "https://id.example.org"}},
     ["jupyterhub_auth_oidc: settings of another login method than jupyterhub_auth_method (ldap)"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_auth_ldap": {"url": "ldaps://ldap.example.org"}},
     ["jupyterhub_auth_ldap: settings of another login method than jupyterhub_auth_method (native)"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_auth_admin_groups": ["admins"]}, ["jupyterhub_auth_method is native", "_admin_groups"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_ldap": {**LDAP["jupyterhub_auth_ldap"], "bind_uri": "x"}},
     ["jupyterhub_auth_ldap", "bind_uri"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_ca_certificate": "/etc/ssl/certs/ca.pem"},
     ["jupyterhub_auth_ca_certificate must be a PEM certificate"]),
    # Profiles and groups.
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{"name": "big", "image": "jupyter/scipy-notebook:latest"}]},
     ["jupyterhub_profiles: the image of big is not one of the notebook images", "jhub-docker/notebook:6.1.1"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [PROFILE, PROFILE]}, ["jupyterhub_profiles: each name must be listed once", "small, small"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{**PROFILE, "groups": ["nobody-defines-it"]}]},
     ["jupyterhub_profiles: the groups nobody-defines-it are in no group list"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{**PROFILE, "mem_limit": "64M"}]},
     ["mem_limit must be a size of at least 128M", "64M"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{**PROFILE, "cpu_limit": 512}]},
     ["cpu_limit must be above 0 and at most this host's", "512"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_groups": [{"name": "lab", "cpu_limit": 0}]}, ["cpu_limit must be above 0", "(got 0"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{**PROFILE, "gpus": "some"}]}, ["gpus must be all or a number"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{**PROFILE, "name": "Big Box"}]}, ["jupyterhub_profiles", "Big Box", "lowercase"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{"name": "small"}]}, ["missing required arguments: image", "jupyterhub_profiles"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_profiles": [{**PROFILE, "groups": "lab"}], "jupyterhub_groups": [{"name": "lab"}]},
     ["the groups of a profile or a shared volume and a group's users are lists of names"]),
    # Shared volumes and named servers.
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "lab-data", "path": "/home/jovyan"}]},
     ["jupyterhub_shared_volumes: the volume 'lab-data' - path /home/jovyan collides with the home directory",
      "/home/jovyan/work/lab-data"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "jupyterhub-user-data", "path": "/data"}]},
     ["the volume 'jupyterhub-user-data' - the name is one of the users' or the hub's own volumes"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "lab-data", "path": "/data", "mode": "wr"}]},
     ["jupyterhub_shared_volumes", "mode", "wr"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "lab-data", "path": "/data", "groups": ["nobody-defines-it"]}]},
     ["the volume 'lab-data' - the groups nobody-defines-it are in no group list"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "lab-data", "path": "/data", "groups": "lab"}],
                                  "jupyterhub_groups": [{"name": "lab"}]},
     ["the groups of a profile or a shared volume and a group's users are lists of names"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes_owner": "jovyan"}, ["jupyterhub_shared_volumes_owner is a numeric uid:gid"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_named_server_limit": -1},
     ["jupyterhub_named_server_limit must be 0 (no named servers) or more (got -1)"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_auth_allowed_groups": "jupyter-users"}, ["_allowed_groups", "must be lists", "not a string"]),
    ("playbooks/jupyterhub.yml", {**LDAP, "jupyterhub_groups": [{"name": "jupyter-users", "users": ["ann"]}]},
     ["jupyterhub_groups: users of jupyter-users are given", "come from the provider"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_root": "backups/jhub"}, ["jupyterhub_backup_root must be an absolute path", "backups/jhub"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_compression": "xz"}, ["jupyterhub_backup_compression", "zstd, gzip, none"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_keep": -1}, ["jupyterhub_backup_keep must be 0 or more", "-1"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_keep": "all"}, ["jupyterhub_backup_keep", "int"]),
    ("playbooks/backup.yml", {"jhub_user_volume": "home-volume"}, ["jhub_user_volume must hold {username}"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_users": ["Alice Smith"]}, ["jupyterhub_backup_users", "Alice Smith", "is not a user name"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_parallel": 0}, ["jupyterhub_backup_parallel must be 1 or more", "got 0"]),
    # Booleans given as "-e name=true" arrive as strings: refused with how to pass them.
    ("playbooks/restore.yml", {"jupyterhub_backup_restore_hub_state": "true"},
     ["jupyterhub_backup_restore_hub_state must be true or false, not the str 'true'", '{"jupyterhub_backup_restore_hub_state": true}']),
    ("playbooks/jupyterhub.yml", {"jupyterhub_admin_password_reset": "yes"},
     ["jupyterhub_admin_password_reset must be true or false, not the str 'yes'"]),
    # Inside a dict option too: a string here would reach jupyterhub_config.py as a truthy string.
    ("playbooks/jupyterhub.yml", {"jupyterhub_authenticator": {"open_signup": "no"}},
     ["jupyterhub_authenticator.open_signup must be true or false, not the str 'no'", '{"jupyterhub_authenticator": {"open_signup": false}}']),
    ("playbooks/docker_engine.yml", {"docker_engine_service_enabled": "false"},
     ["docker_engine_service_enabled must be true or false, not the str 'false'", '{"docker_engine_service_enabled": false}']),
    ("playbooks/docker_engine.yml", {"docker_engine_nvidia_toolkit": "true"},
     ["docker_engine_nvidia_toolkit must be true or false, not the str 'true'", '{"docker_engine_nvidia_toolkit": true}']),
    # NVIDIA's runtime as the default without the toolkit that registers it: dockerd would not start.
    ("playbooks/docker_engine.yml", {"docker_engine_daemon_options": {"default-runtime": "nvidia"}},
     ["docker_engine_daemon_options: default-runtime nvidia is not a runtime of daemon.json", "docker_engine_nvidia_toolkit: true"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_fetch_dir": "copies"}, ["jupyterhub_backup_fetch_dir must be empty or an absolute", "copies"]),
    (
        "playbooks/backup.yml",
        {"jupyterhub_backup_users": ["no-such-user-jhub"], "jupyterhub_backup_root": "/nonexistent/jhub-backups"},
        ["jupyterhub_backup_users: no volume for no-such-user-jhub"],
    ),
    ("playbooks/restore.yml", {"jupyterhub_backup_restore_users": []}, ["jupyterhub_backup_restore_users", "jupyterhub_backup_restore_all_users"]),
    (
        "playbooks/restore.yml",
        {"jupyterhub_backup_restore_users": ["alice"], "jupyterhub_backup_restore_all_users": True},
        ["jupyterhub_backup_restore_users", "not both"],
    ),
    (
        "playbooks/restore.yml",
        {"jupyterhub_backup_name": "yesterday", "jupyterhub_backup_restore_users": ["alice"]},
        ["jupyterhub_backup_name must be a backup's directory name", "yesterday"],
    ),
    (
        "playbooks/restore.yml",
        {"jupyterhub_backup_restore_users": ["alice", "bob"], "jupyterhub_backup_restore_volume": "inspect"},
        ["jupyterhub_backup_restore_volume must", "{username}", "inspect"],
    ),
    (
        "playbooks/restore.yml",
        {
            "jupyterhub_backup_name": "jhub-backup-20000101T000000Z",
            "jupyterhub_backup_restore_users": ["alice"],
            "jupyterhub_backup_root": "/nonexistent/jhub-backups",
        },
        ["jupyterhub_backup_name: backup 'jhub-backup-20000101T000000Z' does not exist", "/nonexistent/jhub-backups"],
    ),
    # The proxy's container name.
    ("playbooks/jupyterhub_network.yml", {"jhub_proxy_container": "my proxy"}, ["jhub_proxy_container", "my proxy", "Docker names"]),
    ("playbooks/jupyterhub_network.yml", {"jhub_proxy_container": "jupyterhub"}, ["jhub_proxy_container and jhub_hub_container must differ"]),
    # The hub network and the user-container firewall.
    ("playbooks/jupyterhub_network.yml", {"jhub_network_subnet": "172.31.252.1/22"}, ["jhub_network_subnet", "172.31.252.1/22"]),
    ("playbooks/jupyterhub_network.yml", {"jupyterhub_network_bridge": "br-name-too-long-for-linux"}, ["jupyterhub_network_bridge", "15"]),
    (
        "playbooks/jupyterhub_network.yml",
        {"jupyterhub_network_blocked_destinations": ["metadata.google.internal"]},
        ["jupyterhub_network_blocked_destinations", "metadata.google.internal", "CIDR"],
    ),
    (
        "playbooks/jupyterhub_network.yml",
        {"jupyterhub_network_allowed_destinations": [{"destination": "10.0.0.5", "port": 70000}]},
        ["jupyterhub_network_allowed_destinations", "10.0.0.5", "1-65535"],
    ),
    (
        "playbooks/jupyterhub_network.yml",
        {"jupyterhub_network_allowed_destinations": [{"destination": "10.0.0.5", "port": 53, "protocol": "icmp"}]},
        ["jupyterhub_network_allowed_destinations", "tcp, udp"],
    ),
    # HTTPS (jupyterhub_tls); the provided certificate's cases are in test_provided_certificate_is_checked below.
    ("playbooks/jupyterhub_tls.yml", {"jhub_tls_mode": "https"}, ["jhub_tls_mode", "none, provided, selfsigned, letsencrypt"]),
    ("playbooks/jupyterhub_tls.yml", {"jhub_tls_mode": "selfsigned"}, ["needs jupyterhub_tls_domain", "(got '')"]),
    (
        "playbooks/jupyterhub_tls.yml",
        {"jupyterhub_tls_domain": "hub_example..org", "jhub_tls_mode": "selfsigned"},
        ["jupyterhub_tls_domain, a valid lowercase DNS name", "hub_example..org"],
    ),
    (
        "playbooks/jupyterhub_tls.yml",
        {"jhub_tls_mode": "letsencrypt", "jupyterhub_tls_domain": "hub.example.org"},
        ["letsencrypt needs jupyterhub_tls_acme_email", "(got '')"],
    ),
    (
        "playbooks/jupyterhub_tls.yml",
        {"jhub_tls_mode": "letsencrypt", "jupyterhub_tls_domain": "hub.example.org", "jupyterhub_tls_acme_email": "ops@example.org",
         "jupyterhub_tls_acme_ca_root": "/nonexistent/acme-root.pem"},
        ["jupyterhub_tls_acme_ca_root", "/nonexistent/acme-root.pem", "is not a file"],
    ),
    (
        "playbooks/jupyterhub_tls.yml",
        {"jhub_tls_mode": "provided", "jupyterhub_tls_domain": "hub.example.org"},
        ["provided needs jupyterhub_tls_cert_src and jupyterhub_tls_key_src"],
    ),
    # The swarm: the manager, where the hub runs, is never drained; only a worker of the inventory is.
    ("playbooks/swarm_drain.yml", {"swarm_node": "localhost"}, ["'localhost' is the swarm's manager", "never drained"]),
    ("playbooks/swarm_drain.yml", {"swarm_node": "no-such-node"}, ["'no-such-node' is not a host of the group jupyterhub_workers"]),
    # Spawn speed.
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_check_interval": -1}, ["jupyterhub_spawner_check_interval must be 0-10", "-1"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_docker_threads": 0}, ["jupyterhub_spawner_docker_threads must be 1-64", "got 0"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_cpu_shares": 1}, ["jupyterhub_cpu_shares must be 2-262144", "got 1"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_cpu_shares": "high"}, ["jupyterhub_cpu_shares", "int"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_uid": 0},
     ["jupyterhub_uid must be a user ID from 1 to 2147483646, not root's 0 (got 0)"]),
    # Bursts: start slots, the wait for one, the cap of pending starts.
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_concurrent_starts": 0}, ["jupyterhub_spawner_concurrent_starts must be 1 or more", "got 0"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_concurrent_starts": -2}, ["jupyterhub_spawner_concurrent_starts must be 1 or more", "got -2"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_concurrent_starts": "many"}, ["jupyterhub_spawner_concurrent_starts", "int"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_queue_timeout": 0}, ["jupyterhub_spawner_queue_timeout must be 1 or more seconds", "got 0"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_max_pending": 0}, ["jupyterhub_spawner_max_pending must be 1 or more", "got 0"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_max_pending": -5}, ["jupyterhub_spawner_max_pending must be 1 or more", "got -5"]),
    (
        "playbooks/jupyterhub.yml",
        {"jupyterhub_spawner_concurrent_starts": 8, "jupyterhub_spawner_max_pending": 4},
        ["jupyterhub_spawner_max_pending must be 1 or more, and at least jupyterhub_spawner_concurrent_starts (8)", "got 4"],
    ),
    # Ranges and element types that the consumers need.
    ("playbooks/docker_engine.yml", {"docker_engine_wait_timeout": 0}, ["docker_engine_wait_timeout must be 1 or more seconds (got 0)"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_idle_culler_timeout": 0}, ["jupyterhub_idle_culler_timeout must be 1 or more seconds (got 0)"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_idle_culler_timeout": -60}, ["jupyterhub_idle_culler_timeout must be 1 or more seconds (got -60)"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_pids_limit": -1}, ["jupyterhub_spawner_pids_limit must be 0 (no limit) or more (got -1)"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_environment": {"GOOD": "x", "BAD": {"nested": 1}, "FLAG": True}},
     ['jupyterhub_spawner_environment: each value must be a string or a number (got {"BAD": {"nested": 1}, "FLAG": true})']),
    ("playbooks/base_image.yml", {"base_image_labels": {"org.example.list": [1, 2]}},
     ["base_image_env and base_image_labels: each value must be a string or a number", '"org.example.list": [1, 2]']),
    ("playbooks/notebook_images.yml", {"notebook_images_apt_packages": ["git", "curl; rm -rf /"]},
     ["notebook_images_apt_packages", "curl; rm -rf /", "is not a Debian package name"]),
    # A variable of an earlier release is refused with its new name.
    ("playbooks/jupyterhub.yml", {"jupyterhub_mem_limit": "4G", "jhub_hub_port": 9000},
     ["jhub_hub_port is from an earlier release: use jhub_proxy_port",
      "jupyterhub_mem_limit is from an earlier release: use jupyterhub_spawner_mem_limit"]),
    ("playbooks/backup.yml", {"jupyterhub_backup_action": "backup"},
     ["jupyterhub_backup_action is from an earlier release: use the playbooks backup.yml and restore.yml"]),
    # The HTTPS front's own refusals.
    ("playbooks/jupyterhub_tls.yml", {"jupyterhub_tls_https_port": 8443, "jupyterhub_tls_http_port": 8443},
     ["jupyterhub_tls_https_port and jupyterhub_tls_http_port must be two different ports 1-65535 (got 8443 and 8443)"]),
    ("playbooks/jupyterhub_tls.yml", {"jupyterhub_tls_uid": 0},
     ["jupyterhub_tls_uid must be a user ID from 1 to 2147483646, not root's 0 (got 0)"]),
    ("playbooks/jupyterhub_tls.yml", {"jupyterhub_tls_acme_ca": "http://acme.internal/dir"},
     ["jupyterhub_tls_acme_ca must be an https:// directory URL (got 'http://acme.internal/dir')"]),
    ("playbooks/jupyterhub_tls.yml", {"jupyterhub_tls_acme_renew_interval": "daily"},
     ["jupyterhub_tls_acme_renew_interval must be a duration such as 10m (got 'daily')"]),
    ("playbooks/jupyterhub_tls.yml", {"jupyterhub_tls_selfsigned_days": 20, "jupyterhub_tls_selfsigned_renew_days": 30},
     ["jupyterhub_tls_selfsigned_days (20) must be more than jupyterhub_tls_selfsigned_renew_days (30)"]),
    ("playbooks/jupyterhub_tls.yml", {"jupyterhub_tls_etc_hosts": {"acme.internal": "not-an-address"}},
     ["jupyterhub_tls_etc_hosts maps host names to IP addresses", '"acme.internal": "not-an-address"']),
    # The monitoring's own refusals.
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True,
                                             "jupyterhub_monitoring_alert_receivers": [{"type": "pager", "url": "https://x.org"}]},
     ["jupyterhub_monitoring_alert_receivers", "email, webhook", "pager"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_alert_receivers": [{"type": "webhook"}]},
     ["jupyterhub_monitoring_alert_receivers: receiver 1 (webhook) needs url, an http(s) URL (got '')"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True,
                                             "jupyterhub_monitoring_alert_receivers": [{"type": "email", "to": "ops@example.org"}]},
     ["email receivers need jupyterhub_monitoring_smtp_smarthost (host:port, got '')", "jupyterhub_monitoring_smtp_from (got '')"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_retention": "forever"},
     ["jupyterhub_monitoring_retention must be a duration that Prometheus takes", "(got 'forever')"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_retention": "0d"},
     ["jupyterhub_monitoring_retention must be a duration that Prometheus takes", "not 0) (got '0d')"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_alert_disk_used_percent": 100},
     ["jupyterhub_monitoring_alert_disk_used_percent must be a percentage above 0 and below 100 (got 100"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_alert_spawn_failures": 0},
     ["jupyterhub_monitoring_alert_spawn_failures must be 1 or more (got 0)"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_scrape_interval": "often"},
     ["jupyterhub_monitoring_scrape_interval, jupyterhub_monitoring_alert_down_for and jupyterhub_monitoring_alert_window", "'often'"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_probe_urls": ["http://hub.example.org/"]},
     ["jupyterhub_monitoring_probe_urls must be https:// URLs (got [\"http://hub.example.org/\"])"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": True, "jupyterhub_monitoring_server_metrics_port": 9090},
     ["must be five different ports 1-65535 (got 9090, 9093, 9100, 9090, 9115)"]),
    ("playbooks/jupyterhub_monitoring.yml", {"jupyterhub_monitoring_enabled": "yes"},
     ["jupyterhub_monitoring_enabled must be true or false"]),
    # One error per problem, and only the wrong value is named.
    ("playbooks/jupyterhub.yml", {"jupyterhub_spawner_http_timeout": 0}, ["jupyterhub_spawner_http_timeout must be 1 or more seconds (got 0)"]),
    ("playbooks/jupyterhub.yml", {"jhub_jupyterhub_version": "latest"},
     ["jhub_jupyterhub_version must be a JupyterHub release such as 6.1.1 (got 'latest')"]),
]

# With a swarm's worker (jhub-test-worker, this machine too) in jupyterhub_workers: "{host}" in the
# words is the case's own host, the hub's host of its run.
SWARM_CASES = [
    ("playbooks/jupyterhub_monitoring.yml", {"jhub_spawner": "swarm", "jupyterhub_monitoring_enabled": True},
     ["jupyterhub_monitoring_enabled: monitoring watches a single host in this release, and jhub_spawner is swarm"]),
    ("playbooks/restore.yml", {"jupyterhub_backup_restore_all_users": True, "jupyterhub_backup_restore_node": "no-such-node"},
     ["jupyterhub_backup_restore_node: 'no-such-node' is not a node of the swarm: {host}, jhub-test-worker"]),
    ("playbooks/restore.yml", {"jupyterhub_backup_restore_all_users": True, "jupyterhub_backup_restore_node": "jhub-test-worker",
                               "jupyterhub_backup_restore_volume": "inspect-{username}"},
     ["jupyterhub_backup_restore_node and jupyterhub_backup_restore_volume: set one of them, not both"]),
    # Users' volumes on shared storage are backed up and restored on the storage server, and never move.
    ("playbooks/backup.yml", {"jhub_user_volume_driver_options": NFS},
     ["the users' volumes are on shared storage (jhub_user_volume_driver_options)"]),
    ("playbooks/restore.yml", {"jhub_user_volume_driver_options": NFS, "jupyterhub_backup_restore_all_users": True},
     ["The users' volumes are on shared storage (jhub_user_volume_driver_options): restore their files on the storage server"]),
    ("playbooks/move.yml", {"jhub_user_volume_driver_options": NFS, "move_user": "alice", "move_to": "jhub-test-worker"},
     ["every node mounts every user's files", "There is nothing to move"]),
    ("playbooks/move.yml", {"move_user": "alice", "move_to": "no-such-node"},
     ["jupyterhub_backup_move_node (playbooks/move.yml: -e move_to=NODE) must be a node of the swarm",
      "({host}, jhub-test-worker); got 'no-such-node'"]),
    ("playbooks/move.yml", {"move_user": "not a name!", "move_to": "jhub-test-worker"},
     ["jupyterhub_backup_move_user (playbooks/move.yml: -e move_user=NAME) must be a user's name", "got 'not a name!'"]),
    ("playbooks/move.yml", {"move_user": "nobody-with-a-volume", "move_to": "jhub-test-worker"},
     ["no volume on any node ({host}, jhub-test-worker). Nothing was changed."]),
    # The volume driver's options.
    ("playbooks/jupyterhub.yml", {"jhub_user_volume_driver_options": {**NFS, "size": "10G"}},
     ["jhub_user_volume_driver_options takes the local volume driver's options type, o and device only, not size."]),
    ("playbooks/jupyterhub.yml", {"jhub_user_volume_driver_options": {**NFS, "o": 4}},
     ['jhub_user_volume_driver_options: each value must be a string, as Docker takes them (got {"o": 4}).']),
    # A bind mount of a host directory in a user's server.
    ("playbooks/jupyterhub.yml", {"jhub_user_volume_driver_options": {**NFS, "o": "bind"}},
     ["jhub_user_volume_driver_options.o asks for a bind mount of a host directory ('bind')", "use shared storage"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "lab-data", "path": "/data", "driver_options":
                                                                {"type": "none", "o": "ro,bind", "device": "/srv"}}]},
     ["the volume 'lab-data' - driver_options o asks for a bind mount of a host directory"]),
    # Every user's volume the same directory.
    ("playbooks/jupyterhub.yml", {"jhub_user_volume_driver_options": {**NFS, "device": ":/export/jupyterhub"}},
     ["jhub_user_volume_driver_options.device must hold {username}", "(got ':/export/jupyterhub')"]),
    # A node-local shared volume would be another one on each node.
    ("playbooks/jupyterhub.yml", {"jupyterhub_shared_volumes": [{"name": "lab-data", "path": "/data"}]},
     ["the volume 'lab-data' - on a swarm a local volume is a different one on every node", "driver_options"]),
    # Workers make a swarm: the single host's spawner, or its bridge, is refused.
    ("playbooks/jupyterhub.yml", {"jhub_spawner": "docker"},
     ["jhub_spawner is docker (users' servers on the hub's host), but the group jupyterhub_workers has hosts (jhub-test-worker)"]),
    ("playbooks/jupyterhub_network.yml", {"jupyterhub_network_bridge": "br-jhub"},
     ["jupyterhub_network_bridge ('br-jhub') names the bridge of a single host's network"]),
]


def _fake_backup(root):
    """A backup of user alice whose archive does not match its manifest (as if damaged)."""
    backup = root / "jhub-backup-20000101T000000Z"
    backup.mkdir(mode=0o700, parents=True)
    (backup / "user-alice.tar.gz").write_bytes(b"not the archive that was backed up")
    manifest = {
        "format": "jhub.docker backup",
        "format_version": 1,
        "name": backup.name,
        "archives": [
            {"file": "user-alice.tar.gz", "kind": "user", "username": "alice", "volume": "jupyterhub-user-alice",
             "size": 34, "files": 1, "sha256": "0" * 64},
        ],
    }
    (backup / "manifest.json").write_text(json.dumps(manifest))


# A backup that does not hold what the restore asks for, or is damaged: refused, nothing restored. The
# volume name is one that no real deployment uses, in case anything went through.
FAKE_BACKUPS = FILES / "backups"
for _vars, _words in [
    ({"jupyterhub_backup_restore_users": ["carol"]}, ["jupyterhub_backup_restore_users: carol not in backup", "its users: alice"]),
    ({"jupyterhub_backup_restore_hub_state": True}, ["jupyterhub_backup_restore_hub_state", "has no hub state"]),
    ({"jupyterhub_backup_restore_users": ["alice"]}, ["user-alice.tar.gz is damaged", "Nothing was restored"]),
    ({"jupyterhub_backup_restore_shared": ["jhub-test-datasets"]},
     ["jupyterhub_backup_restore_shared: jhub-test-datasets not in backup", "its shared volumes: none"]),
]:
    CASES.append(("playbooks/restore.yml", {**_vars, "jupyterhub_backup_root": str(FAKE_BACKUPS),
                                            "jupyterhub_backup_restore_volume": "jhub-test-never-{username}"}, _words))


def _key(path):
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key


def _certificate(path, key, name, days):
    """A self-signed certificate for name, valid from days-2 ago for days (negative: expired)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = now - datetime.timedelta(days=2) if days > 0 else now - datetime.timedelta(days=10)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


# jhub_tls_mode provided: a certificate that cannot serve the hub is refused on the controller.
CERTIFICATES = {
    "mismatched-key": ["jupyterhub_tls_cert_src and jupyterhub_tls_key_src do not match"],
    "expired": ["jupyterhub_tls_cert_src: the certificate expired on"],
    "other-name": ["does not name jupyterhub_tls_domain 'hub.example.org'", "DNS:other.example.org"],
    "not-a-certificate": ["is not a readable PEM certificate on the controller"],
}
for _case, _words in CERTIFICATES.items():
    CASES.append(("playbooks/jupyterhub_tls.yml", {
        "jhub_tls_mode": "provided", "jupyterhub_tls_domain": "hub.example.org",
        "jupyterhub_tls_cert_src": str(FILES / _case / "cert.pem"), "jupyterhub_tls_key_src": str(FILES / _case / "key.pem"),
    }, _words))


def _make_files():
    FILES.mkdir(parents=True, exist_ok=True)
    if not FAKE_BACKUPS.exists():
        _fake_backup(FAKE_BACKUPS)
    for case in CERTIFICATES:
        folder = FILES / case
        folder.mkdir(exist_ok=True)
        signing_key = _key(folder / "key.pem")
        if case == "mismatched-key":
            signing_key = ec.generate_private_key(ec.SECP256R1())
        _certificate(folder / "cert.pem", signing_key, "other.example.org" if case == "other-name" else "hub.example.org",
                     -1 if case == "expired" else 90)
        if case == "not-a-certificate":
            (folder / "cert.pem").write_text("not a certificate\n")


# A valid admin password unless a case sets its own, so that each case fails for its own reason only.
for _playbook, _vars, _words in CASES + SWARM_CASES:
    if _playbook == "playbooks/jupyterhub.yml":
        _vars.setdefault("jupyterhub_admin_password", "Test-Admin-Password-123")

ALL = [(f"case{i:02d}", playbook, values, words, False) for i, (playbook, values, words) in enumerate(CASES)] + [
    (f"swarm{i:02d}", playbook, values, words, True) for i, (playbook, values, words) in enumerate(SWARM_CASES)]


@pytest.fixture(scope="module")
def refusals():
    """Every case's result, from one run per playbook (and per inventory kind); the machine must be the same
    after all of them as before."""
    _make_files()
    before = host_state()
    runs = defaultdict(dict)
    for case, playbook, values, _words, swarm in ALL:
        runs[(playbook, swarm)][case] = values
    found = {}
    for (playbook, swarm), cases in runs.items():
        found.update(run_cases(playbook, cases, workers=["jhub-test-worker"] if swarm else ()))
    assert host_state() == before, "the host changed"
    return found


@pytest.mark.parametrize(("case", "playbook", "values", "words", "swarm"), ALL,
                         ids=[f"{case}-{playbook.split('/')[-1][:-4]}-{next(iter(values))}" for case, playbook, values, _w, _s in ALL])
def test_bad_input_is_refused_and_changes_nothing(refusals, case, playbook, values, words, swarm):
    result = refusals[case]
    problem = result.refused([word.replace("{host}", case) for word in words])
    assert problem is None, f"{playbook} with {values}: {problem}"
    assert "Traceback" not in result.text and "Error rendering" not in result.text, result.text[-3000:]


@pytest.mark.parametrize(("name", "value", "right"), [
    # A range error names the wrong value only.
    ("jupyterhub_spawner_http_timeout", 0,
     ("jupyterhub_spawner_start_timeout", "jupyterhub_health_timeout", "minimum_password_length", "jupyterhub_port")),
    # A version that is not a release is named once, not again as a release of another series.
    ("jhub_jupyterhub_version", "latest", ("not a JupyterHub this collection deploys",)),
])
def test_an_error_names_only_what_is_wrong(refusals, name, value, right):
    [case] = [case for case, _playbook, values, _words, _swarm in ALL
              if {key: v for key, v in values.items() if key != "jupyterhub_admin_password"} == {name: value}]
    message = refusals[case].failed[0][1]
    assert not [word for word in right if word in message], message


def assert_refused(result, words, host="localhost"):
    """The play failed on one task on host, changed nothing, and its error holds each of words (line breaks aside)."""
    assert result.returncode != 0, result.stdout
    flat = " ".join(result.stdout.split())
    for word in words:
        assert word in flat, f"{word!r} not in the error:\n{result.stdout[-3000:]}"
    counters = recap(result.stdout, host)
    assert counters["failed"] == 1 and counters["changed"] == 0, counters


def _swarm_state():
    """This machine's engine's swarm state (inactive where no swarm was ever formed)."""
    return subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True, text=True,
                          check=False).stdout.strip()


# site.yml's first play and swarm.yml's stop every host at the first failure: one run per case.
@pytest.mark.parametrize(("extra_vars", "words", "groups"), [
    ({"jhub_spawner": "kubernetes"}, ["jhub_spawner", "docker, swarm"], None),
    ({"jhub_spawner": "swarm"}, ["jhub_spawner is swarm", "jupyterhub_workers"], None),
    # Every role's input is checked in the first play, before the engine's play: HTTPS's too.
    ({"jhub_tls_mode": "letsencrypt", "jupyterhub_tls_domain": "hub.example.org"},
     ["letsencrypt needs jupyterhub_tls_acme_email", "(got '')"], None),
    ({"jupyterhub_network_bridge": "br-jhub"},
     ["jupyterhub_network_bridge ('br-jhub') names the bridge of a single host's network"], SWARM_GROUPS),
    # The scheduled backup's settings (this machine has no systemd: the schedule runs from cron here).
    ({"jupyterhub_backup_schedule": "every night", "jupyterhub_backup_schedule_cron": "15 3 * * *"},
     ["jupyterhub_backup_schedule: systemd rejects 'every night' as a calendar expression"], None),
    ({"jupyterhub_backup_schedule": "daily", "jupyterhub_backup_schedule_cron": "15 3 * * *", "jupyterhub_backup_keep": 0},
     ["jupyterhub_backup_keep is 0 (keep every backup) with a schedule"], None),
    ({"jupyterhub_backup_schedule": "daily", "jupyterhub_backup_schedule_cron": "at 3 am"},
     ["jupyterhub_backup_schedule_cron: 'at 3 am' is not a cron schedule of five fields"], None),
    ({"jupyterhub_backup_schedule": "daily"}, ["jupyterhub_backup_schedule is set, but localhost does not run systemd",
                                               "set jupyterhub_backup_schedule_cron too"], None),
    ({"jupyterhub_backup_schedule": "daily", "jupyterhub_backup_schedule_cron": "15 3 * * *", "jupyterhub_admin_password": "Swarm-Schedule-1"},
     ["jupyterhub_backup_schedule on a swarm backs up the hub's host alone"], SWARM_GROUPS),
    ({"jupyterhub_backup_schedule": "daily", "jupyterhub_backup_schedule_cron": "15 3 * * *",
      "jupyterhub_backup_restic_repository": "ftp://backup.example.org/jhub", "jupyterhub_backup_restic_password": "Restic-1"},
     ["jupyterhub_backup_restic_repository: 'ftp://backup.example.org/jhub' is neither an absolute path nor a repository"], None),
    ({"jupyterhub_backup_schedule": "daily", "jupyterhub_backup_schedule_cron": "15 3 * * *",
      "jupyterhub_backup_restic_repository": "sftp:backup@example.org:/jhub"},
     ["jupyterhub_backup_restic_repository is set without jupyterhub_backup_restic_password"], None),
    ({"jupyterhub_backup_restic_repository": "/srv/restic", "jupyterhub_backup_restic_password": "Restic-1"},
     ["jupyterhub_backup_restic_repository is set without jupyterhub_backup_schedule"], None),
    ({"jupyterhub_backup_schedule": "daily", "jupyterhub_backup_schedule_cron": "15 3 * * *", "jupyterhub_backup_restic_password": "R-1",
      "jupyterhub_backup_restic_repository": "s3:s3.example.org/jhub", "jupyterhub_backup_restic_environment": {"aws key": "x"}},
     ["jupyterhub_backup_restic_environment maps variable names (capitals, digits, _) to strings", '"aws key"'], None),
], ids=["spawner-choice", "swarm-without-workers", "https-before-the-engine", "swarm-bridge", "schedule-calendar",
        "schedule-keep-0", "schedule-cron", "schedule-no-cron-here", "schedule-swarm", "restic-scheme", "restic-no-password",
        "restic-no-schedule", "restic-environment"])
def test_site_refuses_before_anything_changes(unchanged_host, tmp_path, extra_vars, words, groups):
    before = _swarm_state()
    args = local_inventory(tmp_path / "inventory.yml", groups) if groups else []
    result = run_playbook("playbooks/site.yml", extra_vars, *args)
    assert_refused(result, words)
    # The check is the first play's: no task of another play ran.
    assert "PLAY [Install and start the Docker engine" not in result.stdout, result.stdout[-3000:]
    assert _swarm_state() == before


def test_a_move_without_a_swarm_is_refused(unchanged_host):
    result = run_playbook("playbooks/move.yml", {"move_user": "alice", "move_to": "localhost"})
    assert_refused(result, ["playbooks/move.yml moves a user between the nodes of a swarm: jhub_spawner is docker"])


# Inventories of a swarm whose hosts are all this machine (local connections): each is refused before
# any host is changed, so no swarm is formed here.
SWARM_INVENTORIES = {
    "workers-without-manager": (
        {"jupyterhub": [], "jupyterhub_workers": ["localhost"]},
        ["The group jupyterhub_workers has hosts (localhost) but the group jupyterhub has none"],
    ),
    "two-managers": (
        {"jupyterhub": ["localhost", "jhub-test-hub2"], "jupyterhub_workers": ["jhub-test-worker"]},
        ["The group jupyterhub has 2 hosts (localhost, jhub-test-hub2)", "exactly one host, the swarm's manager"],
    ),
    "manager-also-worker": (
        {"jupyterhub": ["localhost"], "jupyterhub_workers": ["localhost"]},
        ["localhost is in both jupyterhub and jupyterhub_workers"],
    ),
}


@pytest.mark.parametrize(("case", "extra_vars", "words"), [
    *[(case, None, words) for case, (_groups, words) in SWARM_INVENTORIES.items()],
    # TEST-NET-3: an address that no host of this kind has.
    ("advertise-address", {"docker_swarm_advertise_address": "203.0.113.77"},
     ['docker_swarm_advertise_address: "203.0.113.77" is not an address of localhost', "(its addresses: "]),
])
def test_swarm_inventory_is_checked_before_anything_changes(unchanged_host, tmp_path, case, extra_vars, words):
    groups = SWARM_INVENTORIES[case][0] if case in SWARM_INVENTORIES else SWARM_GROUPS
    before = _swarm_state()
    result = run_playbook("playbooks/swarm.yml", extra_vars, *local_inventory(tmp_path / "inventory.yml", groups))
    assert_refused(result, words)
    assert _swarm_state() == before
