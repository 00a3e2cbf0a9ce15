#!/bin/sh
# Start the coordination Redis with an ACL user "switchyard" whose password is a Docker secret
# (written to an ACL file readable by Redis alone, never put on a command line). The default
# user is off; persistence is on: the journal, the epoch and the leases live here.
set -eu
umask 077
pw=$(cat /run/secrets/redis-password)
cat > /tmp/users.acl <<ACL
user default off
user switchyard on >$pw ~sy:* &sy:* +@all -@admin -@dangerous +info +client +config|get
ACL
exec redis-server --appendonly yes --maxmemory-policy noeviction --protected-mode no --aclfile /tmp/users.acl
