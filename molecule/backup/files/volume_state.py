"""Print every entry below /volume (and /volume itself) as JSON: type, mode, owner, size,
sha256, link target, mtime and the other names of the same inode (hard links)."""

import hashlib
import json
import os
import stat

ROOT = "/volume"
entries = {}
inodes = {}
for top, dirs, files in os.walk(ROOT):
    for name in dirs + files + (["."] if top == ROOT else []):
        path = os.path.normpath(os.path.join(top, name))
        rel = os.path.relpath(path, ROOT)
        info = os.lstat(path)
        entry = {"mode": oct(stat.S_IMODE(info.st_mode)), "uid": info.st_uid, "gid": info.st_gid}
        if stat.S_ISLNK(info.st_mode):
            entry.update(type="symlink", target=os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            entry.update(type="dir")
        elif stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            entry.update(type="file", size=info.st_size, sha256=digest.hexdigest(), mtime=int(info.st_mtime))
            inodes.setdefault(info.st_ino, []).append(rel)
        else:
            entry.update(type="other")
        entries[rel] = entry
for names in inodes.values():
    for name in names:
        entries[name]["same_inode"] = sorted(names)
print(json.dumps(entries, sort_keys=True))
