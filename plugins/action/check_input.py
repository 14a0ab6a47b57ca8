# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Action plugin: the checks of a role's input that its argument spec cannot express, in one task."""

from __future__ import annotations

import json

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase


def bool_errors(options: dict, values: dict, path: tuple = ()) -> list[str]:
    """Messages for the options of type bool (also inside dict options) whose value is not a boolean.

    Role argument specs accept "-e name=true" for a bool option but leave the value a string,
    which conditionals then refuse; each message names the option and shows the JSON form.
    """
    errors = []
    prefix = "".join(f"{key}." for key in path)
    for name, spec in options.items():
        if name not in values:
            continue
        value = values[name]
        if spec.get("type") == "bool" and not isinstance(value, bool):
            kind = next((k.__name__ for k in (str, int, float, list, dict) if isinstance(value, k)), type(value).__name__)
            hint = str(value).lower() in ("true", "yes", "on", "1")
            for key in reversed((*path, name)):
                hint = {key: hint}
            errors.append(f"{prefix}{name} must be true or false, not the {kind} {str(value)!r}; "
                          f"on the command line give booleans as JSON: -e '{json.dumps(hint)}'.")
        elif spec.get("type") == "dict" and spec.get("options") and isinstance(value, dict):
            errors.extend(bool_errors(spec["options"], value, (*path, name)))
    return errors


class ActionModule(ActionBase):
    """Fail, naming each problem, when a role's input is wrong; change nothing."""

    TRANSFERS_FILES = False

    def _role_options(self) -> tuple[dict, bool]:
        """The options of the calling role's entry point in its meta/argument_specs.yml, and whether
        Ansible has checked them against the spec already.

        Ansible checks an entry point's spec when the role runs from it (main, or tasks_from an entry
        point). A task file that is not an entry point (tasks_from: validate, which playbooks run
        before anything changes) is checked against the main entry point's spec here.
        """
        role = self._task._role
        if role is None:
            return {}, True
        specs = (self._loader.load_from_file(f"{role.get_role_path()}/meta/argument_specs.yml") or {}).get("argument_specs") or {}
        running = role._from_files.get("tasks") or "main"
        entry_point = self._task.args.get("entry_point") or (running if running in specs else "main")
        return (specs.get(entry_point) or {}).get("options") or {}, running in specs

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec={
            "rules": {"type": "list", "elements": "raw", "default": []},
            "files": {"type": "dict", "default": {}},
            "entry_point": {"type": "str"},
        })

        options, spec_checked = self._role_options()
        values = {name: self._templar.template(task_vars[name]) for name in options if name in task_vars}
        result["changed"] = False
        if not spec_checked:
            # As Ansible checks an entry point's arguments, with the same messages.
            spec_errors = ArgumentSpecValidator(options).validate(values, validate_role_argument_spec=True).error_messages
            if spec_errors:
                result.update(failed=True, msg="Validation of arguments failed:\n" + "\n".join(spec_errors), errors=spec_errors)
                return result
        errors = bool_errors(options, values)
        if errors:
            # The rules read these options as booleans: with a string they would mislead.
            result.update(failed=True, msg=" ".join(errors), errors=errors)
            return result

        # A rule may also be a list of rules (shared ones, kept in a variable).
        rules = [rule for item in args["rules"] for rule in (item if isinstance(item, list) else [item])]
        for index, rule in enumerate(rules):
            if set(rule) != {"that", "msg"} or not isinstance(rule["that"], bool):
                raise AnsibleActionFail(f"check_input: rules[{index}] must be {{that: true/false, msg: text}}, got {rule!r}")
            if not rule["that"]:
                errors.append(str(rule["msg"]).strip())

        host = task_vars.get("inventory_hostname", "the host")
        for name, path in args["files"].items():
            if not path:
                continue
            stat = self._execute_module(module_name="ansible.legacy.stat", task_vars=task_vars,
                                        module_args={"path": path, "get_checksum": False, "get_mime": False})
            if not stat.get("stat", {}).get("isreg"):
                errors.append(f"{name}: '{path}' is not a file on {host}.")

        if errors:
            result["failed"] = True
            result["msg"] = " ".join(errors)
            result["errors"] = errors
        else:
            result["msg"] = "The input is valid."
        return result
