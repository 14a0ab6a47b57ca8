#!/usr/bin/env python
"""Load a candidate jupyterhub_config.py the way JupyterHub does, without starting anything.

Run by the jhub.docker jupyterhub role in a one-off container of the hub image before the
candidate replaces the live configuration: a syntax error, a NameError in
jupyterhub_extra_config or a value of the wrong type for a JupyterHub setting fails here,
and the running hub is left as it was.
"""

import sys
import traceback

from jupyterhub.app import JupyterHub
from traitlets.config import Config


def main(path: str) -> int:
    config = Config()
    namespace = {"c": config, "get_config": lambda: config, "__file__": path, "__name__": "__config__"}
    try:
        with open(path, encoding="utf-8") as handle:
            exec(compile(handle.read(), path, "exec"), namespace)  # noqa: S102 (the point of this check)
        JupyterHub(config=config)  # validates the JupyterHub settings' types
    except Exception:  # noqa: BLE001 (report whatever the configuration raises)
        traceback.print_exc()
        print(f"{path}: the configuration does not load", file=sys.stderr)
        return 1
    print(f"{path}: loads")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
