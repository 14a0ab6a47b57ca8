#!/bin/sh
# Starts the test LDAP server from scratch: slapd's configuration (config.ldif) and directory (seed.ldif)
# are made anew at every start, so a container always begins with the seed, whatever an earlier one did.
# Then slapd runs in the foreground as the container's main process, its log (level $LDAP_DEBUG) on stderr.
set -eu

share=/usr/local/share/jhub-test-ldap
suffix=dc=example,dc=org
: "${LDAP_ROOT_PASSWORD:?the password of cn=admin,$suffix (the rootdn) is needed}"

# TLS: the mounted files are the test's (root's, maybe unreadable to others); slapd runs as openldap and
# reads its copies, the key readable by it alone.
install -d -o openldap -g openldap -m 0750 /run/slapd /run/slapd/certs
install -o openldap -g openldap -m 0644 /certs/server.pem /certs/ca.pem /run/slapd/certs/
install -o openldap -g openldap -m 0600 /certs/server.key /run/slapd/certs/

# A new configuration (slapd.d) and an empty mdb database.
rm -rf /etc/ldap/slapd.d /var/lib/ldap
install -d -o openldap -g openldap -m 0750 /etc/ldap/slapd.d /var/lib/ldap
root_hash=$(slappasswd -s "$LDAP_ROOT_PASSWORD")
sed "s|@ROOT_PASSWORD_HASH@|$root_hash|" "$share/config.ldif" | slapadd -q -n 0 -F /etc/ldap/slapd.d

# The seed, each clear userPassword replaced by its {SSHA} hash on the way in.
while IFS= read -r line; do
    case $line in
        "userPassword: "*) printf 'userPassword: %s\n' "$(slappasswd -s "${line#userPassword: }")" ;;
        *) printf '%s\n' "$line" ;;
    esac
done <"$share/seed.ldif" | slapadd -q -F /etc/ldap/slapd.d -b "$suffix"

# slapadd ran as root: its files go to slapd's user.
chown -R openldap:openldap /etc/ldap/slapd.d /var/lib/ldap

# ldapi:/// lets the tests change the directory from inside the container (docker exec ldapmodify).
exec slapd -h "ldap:/// ldaps:/// ldapi:///" -u openldap -g openldap -F /etc/ldap/slapd.d -d "${LDAP_DEBUG:-stats}"
