#!/usr/bin/env python
"""Make sure the admin account exists in NativeAuthenticator's table, with its password.

The hub container of the jhub.docker jupyterhub role runs it at every start, with JupyterHub as
the command to run next (after --): the account exists before the hub serves anyone, so that
nobody can sign up as the admin first. With --reset (run by the role in the running hub when
jupyterhub_admin_password_reset is set) it also gives the account the password of the file.
Prints one JSON line: {"changed": bool, "action": "..."}. Never prints the password.
"""

import argparse
import json
import os
import sys

import bcrypt
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo  # registers the users_info table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--reset", action="store_true", help="set the password even if the account has one")
    parser.add_argument("command", nargs="*", help="a command to run in place of this one afterwards (after --)")
    args = parser.parse_args()

    with open(args.password_file, encoding="utf-8") as handle:
        password = handle.read().rstrip("\n").encode()
    if not password:
        print(json.dumps({"changed": False, "error": "the admin password file is empty"}))
        return 2

    # Creates the hub's tables (and stamps the schema) on a new database, as the hub would.
    session = orm.new_session_factory(args.db_url)()
    info = UserInfo.find(session, args.user)
    action = "kept"
    if info is None:
        info = UserInfo(username=args.user, password=bcrypt.hashpw(password, bcrypt.gensalt()), is_authorized=True)
        session.add(info)
        action = "created"
    else:
        if args.reset and not bcrypt.checkpw(password, info.password):
            info.password = bcrypt.hashpw(password, bcrypt.gensalt())
            action = "password reset"
        if not info.is_authorized:
            info.is_authorized = True
            action = "authorized" if action == "kept" else action + ", authorized"
    session.commit()
    print(json.dumps({"changed": action != "kept", "action": action}), flush=True)
    if args.command:
        os.execvp(args.command[0], args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
