"""The backup helper (roles/jupyterhub_backup/files/jhub-backup.py) on real files, with the real tar,
gzip and zstd: each compression makes a backup that restores bit for bit, and a restore into a
volume without room for the archive's data is refused before anything is written.

The Molecule backup checks (molecule/backup/checks.yml) run the same helper in the hub image against
Docker volumes, with the default compression (zstd); these cover the other choices and the
restore-side space check, which a test host cannot fill.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "roles" / "jupyterhub_backup" / "files" / "jhub-backup.py"


@pytest.fixture
def helper(monkeypatch, tmp_path, capsys):
    """run(*argv) runs the helper's main() with its volumes under tmp_path/volumes; returns its JSON line."""
    spec = importlib.util.spec_from_file_location("jhub_backup", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VOLUMES", str(tmp_path / "volumes"))

    def run(*argv: str) -> tuple[int, dict]:
        monkeypatch.setattr(sys, "argv", ["jhub-backup", *argv])
        rc = module.main()
        return rc, json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    return run


def make_tree(root: Path) -> None:
    """A user's volume with what a round trip can lose: odd names, links, modes, an empty directory."""
    (root / "sub dir/émpty").mkdir(parents=True)
    (root / "notebook.ipynb").write_text('{"cells": []}\n')
    (root / "sub dir/new\nline.txt").write_bytes(os.urandom(4096))
    (root / "private").write_text("mine\n")
    (root / "private").chmod(0o600)
    (root / "sub dir").chmod(0o2770)
    (root / "link").symlink_to("notebook.ipynb")
    (root / "dangling").symlink_to("nowhere")
    os.link(root / "notebook.ipynb", root / "hard")


def tree(root: Path) -> dict[str, tuple]:
    """Every entry below ROOT: type, mode, owner, and its content or link target; and which are hard links."""
    seen, inodes = {}, {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        name = str(path.relative_to(root))
        content = (os.readlink(path) if path.is_symlink() else
                   path.read_bytes() if stat.S_ISREG(info.st_mode) else None)
        seen[name] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, content)
        if stat.S_ISREG(info.st_mode):
            inodes.setdefault(info.st_ino, []).append(name)
    return {**seen, "hard links": sorted(names for names in inodes.values() if len(names) > 1)}


@pytest.mark.parametrize(("compression", "suffix"), [("zstd", ".tar.zst"), ("gzip", ".tar.gz"), ("none", ".tar")])
def test_each_compression_restores_bit_for_bit(helper, tmp_path, compression, suffix):
    if compression == "zstd" and shutil.which("zstd") is None:
        pytest.fail("zstd is not installed on this machine (Debian's zstd)")
    make_tree(tmp_path / "volumes" / "jupyterhub-user-alice")
    out = tmp_path / "backup"
    out.mkdir()
    rc, made = helper("backup", "--out", str(out), "--compression", compression, "--user", "alice=jupyterhub-user-alice")
    assert rc == 0, made
    (entry,) = made["archives"]
    assert entry["file"] == "user-alice" + suffix and entry["compression"] == compression, entry
    assert stat.S_IMODE((out / entry["file"]).stat().st_mode) == 0o600
    # The file is what its name says: zstd's or gzip's magic number, or a tar header.
    data = (out / entry["file"]).read_bytes()
    assert {"zstd": data[:4] == b"\x28\xb5\x2f\xfd", "gzip": data[:2] == b"\x1f\x8b",
            "none": data[257:262] == b"ustar"}[compression], data[:8]

    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "left over").write_text("replaced by the restore\n")
    rc, done = helper("restore", "--archive", str(out / entry["file"]), "--sha256", entry["sha256"],
                      "--dest", str(dest), "--need", str(entry["data_bytes"]))
    assert rc == 0 and done["changed"], done
    assert tree(dest) == tree(tmp_path / "volumes" / "jupyterhub-user-alice")


def test_a_restore_without_room_for_the_data_is_refused_before_anything_is_written(helper, tmp_path):
    make_tree(tmp_path / "volumes" / "jupyterhub-user-alice")
    out = tmp_path / "backup"
    out.mkdir()
    rc, made = helper("backup", "--out", str(out), "--compression", "gzip", "--user", "alice=jupyterhub-user-alice")
    assert rc == 0, made
    (entry,) = made["archives"]
    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "kept").write_text("still here\n")
    before = tree(dest)
    free = shutil.disk_usage(dest).free
    rc, refused = helper("restore", "--archive", str(out / entry["file"]), "--sha256", entry["sha256"],
                         "--dest", str(dest), "--need", str(free * 2))
    assert rc == 1 and refused["failed"], refused
    assert "the volume to restore into is too small" in refused["msg"] and "nothing was written" in refused["msg"], refused
    assert tree(dest) == before
    # The control: the same restore with the archive's real size goes through.
    rc, done = helper("restore", "--archive", str(out / entry["file"]), "--sha256", entry["sha256"],
                      "--dest", str(dest), "--need", str(entry["data_bytes"]))
    assert rc == 0 and done["changed"], done


def test_a_shared_volume_is_archived_beside_the_users_and_restored_with_its_mode(helper, tmp_path):
    make_tree(tmp_path / "volumes" / "jupyterhub-user-alice--work")
    shared = tmp_path / "volumes" / "jhub-project"
    make_tree(shared)
    shared.chmod(0o2775)  # a project volume's root, as the jupyterhub role sets it
    out = tmp_path / "backup"
    out.mkdir()
    rc, made = helper("backup", "--out", str(out), "--compression", "gzip", "--user", "alice--work=jupyterhub-user-alice--work",
                      "--shared", "jhub-project")
    assert rc == 0, made
    kinds = {(entry["kind"], entry["username"], entry["volume"], entry["file"]) for entry in made["archives"]}
    assert kinds == {("user", "alice--work", "jupyterhub-user-alice--work", "user-alice--work.tar.gz"),
                     ("shared", None, "jhub-project", "shared-jhub-project.tar.gz")}
    (entry,) = [entry for entry in made["archives"] if entry["kind"] == "shared"]
    dest = tmp_path / "restored"
    dest.mkdir()
    rc, done = helper("restore", "--archive", str(out / entry["file"]), "--sha256", entry["sha256"], "--dest", str(dest))
    assert rc == 0 and done["changed"], done
    assert tree(dest) == tree(shared) and stat.S_IMODE(dest.stat().st_mode) == 0o2775
