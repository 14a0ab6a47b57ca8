"""Archive Docker volumes and the hub state, and restore them.

Run by the jhub.docker jupyterhub_backup role in one-off containers of the hub image
(GNU tar, python3), with the volumes mounted read-only and the backup directory at
/backup. Prints one JSON line that describes what it did; exits non-zero on failure.

  jhub-backup backup  --out DIR --compression zstd|gzip|none --parallel N
                      [--user NAME=VOLUME ...] [--shared VOLUME ...] [--hub-state VOLUME]
                      [--no-space-check]
      (each volume mounted at /volumes/VOLUME)
  jhub-backup restore --archive FILE --sha256 HEX --dest DIR [--need BYTES]
  jhub-backup restore-hub-state --archive FILE --sha256 HEX --data DIR
"""

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

CHUNK = 1 << 20
# tar keeps owners as numbers, modes, symlinks, hard links, empty directories, sparse
# files and any file name (pax format).
TAR_CREATE = ["tar", "--create", "--file=-", "--format=posix", "--numeric-owner", "--sparse"]
TAR_EXTRACT = ["tar", "--extract", "--file=-", "--numeric-owner", "--same-owner", "--preserve-permissions"]
VOLUMES = "/volumes"
DB_FILES = ("jupyterhub.sqlite", "jupyterhub_cookie_secret")


def jupyterhub_version():
    try:
        from jupyterhub import __version__  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return __version__


def effective_compression(wanted):
    """zstd when asked and present; gzip when zstd is missing from the image."""
    if wanted == "zstd" and shutil.which("zstd") is None:
        return "gzip"
    return wanted


SUFFIX = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}


def compressor(kind):
    return {"zstd": ["zstd", "-q", "-c", "-T0"], "gzip": ["gzip", "-c", "-6"], "none": None}[kind]


def decompressor(path):
    if path.endswith(".zst"):
        return ["zstd", "-q", "-d", "-c"]
    if path.endswith(".gz"):
        return ["gzip", "-d", "-c"]
    return None


def fail(message, **extra):
    print(json.dumps({"failed": True, "msg": message, **extra}))
    return 1


def create(directory, out, kind):
    """tar DIRECTORY into OUT (0600), compressed; returns (size, sha256, entries, warning)."""
    digest = hashlib.sha256()
    size = 0
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile(mode="r") as index:
        tar = subprocess.Popen(
            TAR_CREATE + ["--verbose", "--index-file=" + index.name, "--directory=" + directory, "."],
            stdout=subprocess.PIPE, stderr=err,
        )
        comp = None
        stream = tar.stdout
        if compressor(kind):
            comp = subprocess.Popen(compressor(kind), stdin=tar.stdout, stdout=subprocess.PIPE)
            tar.stdout.close()
            stream = comp.stdout
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        tar_rc = tar.wait()
        comp_rc = comp.wait() if comp else 0
        err.seek(0)
        messages = err.read().decode(errors="replace").strip()
        # tar: 0 fine, 1 a file changed while it was read (kept, with a warning), 2 fatal.
        if tar_rc not in (0, 1) or comp_rc != 0:
            raise RuntimeError(f"tar exited {tar_rc}, compressor {comp_rc}: {messages[-2000:]}")
        entries = sum(1 for line in index if line.strip() not in ("./", ""))
    return size, digest.hexdigest(), entries, messages if tar_rc == 1 else ""


def data_size(directory):
    """Bytes of the regular files below DIRECTORY (what an uncompressed archive holds)."""
    total = 0
    for top, _dirs, files in os.walk(directory):
        for name in files:
            info = os.lstat(os.path.join(top, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def check_space(directory, need, what, why=""):
    """Fail before writing when DIRECTORY's file system has less than NEED bytes free."""
    fs = os.statvfs(directory)
    free = fs.f_bavail * fs.f_frsize
    if free < need:
        raise RuntimeError(f"{what} is too small: {human(free)} free, {human(need)} needed{why}; nothing was written")


def human(size):
    return f"{size / 2**20:.1f} MiB"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_hub_state(data, work):
    """Consistent copies of the database (SQLite's online backup API) and the cookie secret in WORK;
    returns the database copy's SHA-256 (a restore reports the same for the file it puts back)."""
    source_db = os.path.join(data, DB_FILES[0])
    copy_db = os.path.join(work, DB_FILES[0])
    source = sqlite3.connect(source_db)
    target = sqlite3.connect(copy_db)
    with target:
        source.backup(target)
    check = target.execute("PRAGMA integrity_check").fetchone()[0]
    target.close()
    source.close()
    if check != "ok":
        raise RuntimeError(f"the copy of {source_db} fails its integrity check: {check}")
    for name in DB_FILES:
        original = os.stat(os.path.join(data, name))
        copy = os.path.join(work, name)
        if name != DB_FILES[0]:
            shutil.copy2(os.path.join(data, name), copy)
        os.chown(copy, original.st_uid, original.st_gid)
        os.chmod(copy, stat.S_IMODE(original.st_mode))
    return file_sha256(copy_db)


def archive(job, out, kind):
    """Archive one job of --jobs."""
    started = time.monotonic()
    base = {"user": f"user-{job.get('username')}", "shared": f"shared-{job['volume']}"}.get(job["kind"], "hub-state")
    path = os.path.join(out, base + SUFFIX[kind])
    database = {}
    if job["kind"] != "hub-state":
        size, sha256, entries, warning = create(job["src"], path, kind)
    else:
        with tempfile.TemporaryDirectory() as work:
            os.chmod(work, 0o700)
            database["database_sha256"] = snapshot_hub_state(job["src"], work)
            size, sha256, entries, warning = create(work, path, kind)
    return {**database, "kind": job["kind"], "username": job.get("username"), "volume": job["volume"],
            "file": os.path.basename(path), "size": size,
            "sha256": sha256, "files": entries, "data_bytes": job["data_bytes"], "compression": kind,
            "warning": warning, "jupyterhub_version": jupyterhub_version(),
            "seconds": round(time.monotonic() - started, 3)}


def cmd_backup(args):
    started = time.monotonic()
    kind = effective_compression(args.compression)
    jobs = [{"kind": "user", "username": name, "volume": volume}
            for name, volume in (spec.split("=", 1) for spec in args.user)]
    jobs += [{"kind": "shared", "volume": volume} for volume in args.shared]
    if args.hub_state:
        jobs.append({"kind": "hub-state", "volume": args.hub_state})
    for job in jobs:
        job["src"] = os.path.join(VOLUMES, job["volume"])
    for job in jobs:
        job["data_bytes"] = data_size(job["src"])
    if args.space_check:
        check_space(args.out, sum(job["data_bytes"] for job in jobs), "jupyterhub_backup_root",
                    " (the data uncompressed, the worst case; jupyterhub_backup_space_check: false skips this check)")
    # Several archives at once; the first failure fails the backup (the caller removes it).
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        archives = list(pool.map(lambda job: archive(job, args.out, kind), jobs))
    print(json.dumps({"archives": archives, "seconds": round(time.monotonic() - started, 3),
                      "data_bytes": sum(job["data_bytes"] for job in jobs)}))
    return 0


def extract(archive, expected, directory):
    """Extract ARCHIVE into a new directory under DIRECTORY; returns its path.

    The archive's SHA-256 is checked while it is read: on a mismatch, or any error,
    the new directory is removed and DIRECTORY is as it was.
    """
    staging = tempfile.mkdtemp(prefix=".jhub-restore-", dir=directory)
    digest = hashlib.sha256()
    try:
        with tempfile.TemporaryFile() as err:
            tar = subprocess.Popen(TAR_EXTRACT + ["--directory=" + staging], stdin=subprocess.PIPE, stderr=err)
            sink, comp = tar.stdin, None
            if decompressor(archive):
                comp = subprocess.Popen(decompressor(archive), stdin=subprocess.PIPE, stdout=tar.stdin, stderr=err)
                tar.stdin.close()
                sink = comp.stdin
            with open(archive, "rb") as handle:
                while True:
                    chunk = handle.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    sink.write(chunk)
            sink.close()
            comp_rc = comp.wait() if comp else 0
            tar_rc = tar.wait()
            err.seek(0)
            messages = err.read().decode(errors="replace").strip()
        if digest.hexdigest() != expected:
            raise RuntimeError(f"{archive} is damaged: sha256 {digest.hexdigest()}, the manifest says {expected}")
        if tar_rc != 0 or comp_rc != 0:
            raise RuntimeError(f"tar exited {tar_rc}, decompressor {comp_rc}: {messages[-2000:]}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def cmd_restore(args):
    try:
        if args.need:
            check_space(args.dest, args.need, "the volume to restore into", " (the archive's data)")
        staging = extract(args.archive, args.sha256, args.dest)
    except RuntimeError as exc:
        return fail(str(exc))
    # The content is replaced: everything else goes, then the archive's content moves up
    # (a rename on the same file system) and the volume's root takes the archived root's
    # owner, mode and times.
    for name in os.listdir(args.dest):
        path = os.path.join(args.dest, name)
        if path != staging:
            remove(path)
    for name in os.listdir(staging):
        os.rename(os.path.join(staging, name), os.path.join(args.dest, name))
    root = os.lstat(staging)
    os.chown(args.dest, root.st_uid, root.st_gid)
    os.chmod(args.dest, stat.S_IMODE(root.st_mode))
    os.rmdir(staging)
    os.utime(args.dest, ns=(root.st_atime_ns, root.st_mtime_ns))
    print(json.dumps({"changed": True, "dest": args.dest}))
    return 0


def cmd_restore_hub_state(args):
    try:
        staging = extract(args.archive, args.sha256, args.data)
    except RuntimeError as exc:
        return fail(str(exc))
    try:
        missing = [name for name in DB_FILES if not os.path.isfile(os.path.join(staging, name))]
        if missing:
            return fail(f"{args.archive} lacks {', '.join(missing)}")
        # A journal left by the old database would corrupt the restored one.
        for suffix in ("-journal", "-wal", "-shm"):
            leftover = os.path.join(args.data, DB_FILES[0] + suffix)
            if os.path.lexists(leftover):
                os.unlink(leftover)
        for name in DB_FILES:
            os.replace(os.path.join(staging, name), os.path.join(args.data, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(json.dumps({"changed": True, "dest": args.data,
                      "database_sha256": file_sha256(os.path.join(args.data, DB_FILES[0]))}))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    backup = sub.add_parser("backup")
    backup.add_argument("--out", required=True, help="the backup directory")
    backup.add_argument("--compression", choices=["zstd", "gzip", "none"], default="zstd")
    backup.add_argument("--parallel", type=int, default=2, help="archives made at once")
    backup.add_argument("--user", action="append", default=[], metavar="NAME=VOLUME", help="a user's volume")
    backup.add_argument("--shared", action="append", default=[], metavar="VOLUME", help="a shared volume of users' servers")
    backup.add_argument("--hub-state", metavar="VOLUME", help="the hub's data volume")
    backup.add_argument("--space-check", action=argparse.BooleanOptionalAction, default=True)
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore")
    restore.add_argument("--archive", required=True)
    restore.add_argument("--sha256", required=True)
    restore.add_argument("--dest", default="/volume")
    restore.add_argument("--need", type=int, default=0, help="bytes the restored data needs")
    restore.set_defaults(func=cmd_restore)
    restore_hub = sub.add_parser("restore-hub-state")
    restore_hub.add_argument("--archive", required=True)
    restore_hub.add_argument("--sha256", required=True)
    restore_hub.add_argument("--data", default="/data")
    restore_hub.set_defaults(func=cmd_restore_hub_state)
    args = parser.parse_args()
    try:
        return args.func(args)
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        return fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
