#!/usr/bin/env python3
"""Make sure the admin account exists in NativeAuthenticator's table, with its password.

Run by the jhub.docker jupyterhub role in a one-off container of the hub image, before
the hub container starts, so that nobody can sign up as the admin first. Prints one JSON
line: {"changed": bool, "action": "..."}. Never prints the password.
"""

import argparse
import json
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
    print(json.dumps({"changed": action != "kept", "action": action}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
