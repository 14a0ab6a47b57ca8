"""Fill /volume with files that a careless backup would lose (run as root in a one-off container)."""

import os

ROOT = "/volume"
JOVYAN = (1000, 100)

os.chdir(ROOT)
os.makedirs("dir with spaces/ünïcødé ✓", exist_ok=True)
os.makedirs("empty dir", exist_ok=True)
os.makedirs("deep/a/b/c", exist_ok=True)
with open("dir with spaces/ünïcødé ✓/file with spaces.txt", "w", encoding="utf-8") as handle:
    handle.write("hello, wörld\n")
with open("name\nwith newline", "w", encoding="utf-8") as handle:
    handle.write("odd name\n")
with open("deep/a/b/c/notebook.ipynb", "w", encoding="utf-8") as handle:
    handle.write('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
with open("big.bin", "wb") as handle:
    for _ in range(50):
        handle.write(os.urandom(1 << 20))
with open("private.txt", "w", encoding="utf-8") as handle:
    handle.write("only mine\n")
os.chmod("private.txt", 0o600)
os.link("private.txt", "hard link to private.txt")
os.symlink("dir with spaces/ünïcødé ✓/file with spaces.txt", "link to file")
os.symlink("does-not-exist", "dangling link")
with open("script.sh", "w", encoding="utf-8") as handle:
    handle.write("#!/bin/sh\necho hi\n")
os.chmod("script.sh", 0o750)
for top, dirs, files in os.walk(ROOT):
    for name in dirs + files:
        os.lchown(os.path.join(top, name), *JOVYAN)
os.chown(ROOT, *JOVYAN)
# One file that stays root's, one with another group.
with open("root-owned.txt", "w", encoding="utf-8") as handle:
    handle.write("root\n")
os.lchown("deep/a/b", 1000, 1234)
os.chmod("deep/a/b", 0o2770)
