# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Action plugin: wait until the hub answers /hub/health, and fail at once if its container stops or restarts."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """Poll the hub's container and its health URL on the managed host, once a second."""

    TRANSFERS_FILES = False

    def _module(self, name: str, args: dict, task_vars: dict) -> dict:
        return self._execute_module(module_name=name, module_args=args, task_vars=task_vars)

    def _log_tail(self, container: str, task_vars: dict) -> str:
        logs = self._module("ansible.builtin.command", {"argv": ["docker", "logs", "--tail", "30", container]}, task_vars)
        return (logs.get("stdout", "") + "\n" + logs.get("stderr", "")).strip()

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec={
            "container": {"type": "str", "required": True},
            "url": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 180},
        })
        result["changed"] = False
        if self._play_context.check_mode:
            result["skipped"] = True
            return result
        container, started, first = args["container"], time.monotonic(), None
        while True:
            info = self._module("community.docker.docker_container_info", {"name": container}, task_vars)
            state = (info.get("container") or {}).get("State") or {}
            seen = (state.get("StartedAt"), state.get("RestartCount"))
            first = first or seen
            if not info.get("exists") or not state.get("Running") or state.get("Restarting") or seen != first:
                what = ("does not exist" if not info.get("exists") else
                        f"exited with status {state.get('ExitCode')}" if not state.get("Running") else "restarted")
                log = self._log_tail(container, task_vars) if info.get("exists") else ""
                result.update(failed=True, reason=what, log=log,
                              msg=f"The hub container {container} {what} after {time.monotonic() - started:.0f} s; "
                                  f"the end of its log:\n{log}")
                return result
            health = self._module("ansible.builtin.uri", {"url": args["url"], "status_code": [200], "timeout": 5}, task_vars)
            if not health.get("failed"):
                result.update(elapsed=round(time.monotonic() - started, 1), msg=f"{args['url']} answered")
                return result
            if time.monotonic() - started > args["timeout"]:
                log = self._log_tail(container, task_vars)
                result.update(failed=True, reason="not healthy", log=log,
                              msg=f"{args['url']} did not answer within {args['timeout']} s although the hub container "
                                  f"{container} runs; the end of its log:\n{log}")
                return result
            time.sleep(1)
