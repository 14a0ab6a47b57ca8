"""The collection as its users get it: documentation that ansible-doc reads, and the built artifact."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import BIN, ROOT, ansible_env, recap

# What an installed collection needs, and nothing that only this repository runs.
ARTIFACT = {"CHANGELOG.md", "changelogs", "FILES.json", "LICENSE", "MANIFEST.json", "README.md", "docs", "meta", "playbooks",
            "plugins", "roles"}


def _plugins() -> list[tuple[str, str]]:
    """(type, name) of every plugin of the collection that ansible-doc documents."""
    found = []
    for kind, folder in (("filter", "filter"), ("test", "test"), ("module", "modules")):
        found += [(kind, f"jhub.docker.{path.stem}") for path in sorted((ROOT / "plugins" / folder).glob("*.py"))]
    return found


def _roles() -> list[str]:
    return sorted(path.parent.parent.name for path in ROOT.glob("roles/*/meta/argument_specs.yml"))


def _ansible_doc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ansible-doc"), *args], cwd=ROOT, env=ansible_env(), capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize(("kind", "name"), _plugins(), ids=[f"{k}-{n}" for k, n in _plugins()])
def test_ansible_doc_reads_every_plugin(kind, name):
    result = _ansible_doc("-t", kind, name)
    assert result.returncode == 0 and "ERROR" not in result.stderr and "Unable to parse" not in result.stderr, (
        result.stdout[-2000:] + result.stderr)
    assert name in result.stdout


@pytest.mark.parametrize("role", _roles())
def test_ansible_doc_reads_every_role_entry_point(role):
    result = _ansible_doc("-t", "role", f"jhub.docker.{role}")
    assert result.returncode == 0 and "ERROR" not in result.stderr, result.stdout[-2000:] + result.stderr
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for entry_point, spec in specs.items():
        assert re.search(rf"ENTRY POINT: \*?{entry_point}\*? - ", result.stdout), (entry_point, result.stdout[-2000:])
        for option in spec.get("options", {}):
            assert option in result.stdout, (role, entry_point, option)


def test_changelog_is_generated_from_its_fragments(tmp_path):
    """CHANGELOG.md is antsibull-changelog's rendering of changelogs/changelog.yaml, and the
    fragments of the next release pass its lint."""
    env = ansible_env(PATH=f"{BIN}:{os.environ['PATH']}")
    lint = subprocess.run([str(BIN / "antsibull-changelog"), "lint"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    generated = subprocess.run([str(BIN / "antsibull-changelog"), "generate", "--output", str(tmp_path / "CHANGELOG.md")],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert (tmp_path / "CHANGELOG.md").read_text() == (ROOT / "CHANGELOG.md").read_text(), (
        "CHANGELOG.md differs from changelogs/: run `antsibull-changelog generate`")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The collection built with ansible-galaxy and installed into an empty collections path."""
    work = tmp_path_factory.mktemp("collection")
    built = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work), str(ROOT)],
                           cwd=work, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (artifact,) = work.glob("jhub-docker-*.tar.gz")
    with tarfile.open(artifact) as tar:
        top = {member.name.split("/")[0] for member in tar.getmembers()}
        changelogs = sorted(member.name for member in tar.getmembers() if member.name.startswith("changelogs/"))
    assert top == ARTIFACT, f"the artifact holds {sorted(top - ARTIFACT)} too and lacks {sorted(ARTIFACT - top)}"
    # The changelog's data, as the Ansible package reads it; not the fragments of the next release.
    assert changelogs == ["changelogs/changelog.yaml", "changelogs/config.yaml"], changelogs
    # As the README says: the dependencies (community.docker, ...) are found in the ansible package.
    install = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(work / "collections"),
                              str(artifact)], cwd=work, env=_installed_env(work), capture_output=True, text=True, timeout=300,
                             check=False)
    assert install.returncode == 0 and (work / "collections/ansible_collections/jhub/docker/MANIFEST.json").is_file(), (
        install.stdout + install.stderr)
    return work


def _installed_env(installed: Path) -> dict[str, str]:
    """Ansible with the installed copy only: no ansible.cfg of this repository (its collections path
    links back to the repository), collections only from the installation and the ansible package."""
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=str(installed / "collections"))
    env.pop("ANSIBLE_CONFIG", None)
    return env


def test_the_installed_collection_runs_its_playbooks_by_name(installed):
    for playbook in ("site", "backup", "restore", "docker_engine", "jupyterhub"):
        result = subprocess.run([str(BIN / "ansible-playbook"), f"jhub.docker.{playbook}", "--syntax-check", "-i", "localhost,"],
                                cwd=installed, env=_installed_env(installed), capture_output=True, text=True, timeout=300,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert str(ROOT) not in result.stdout + result.stderr


def test_a_role_of_the_installed_collection_runs_in_check_mode(installed, unchanged_host):
    """docker_engine from the installed copy, against this machine, in check mode: it runs and changes nothing."""
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "jhub.docker.docker_engine", "--check", "-i", "localhost,", "-c", "local",
         "-e", '{"jhub_hosts": "localhost", "docker_engine_source": "distro", "ansible_python_interpreter": "/usr/bin/python3"}'],
        cwd=installed, env=_installed_env(installed), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    assert recap(result.stdout)["failed"] == 0
