#!/bin/bash
# A replica's first start: clone the primary with pg_basebackup (as replicator), then run postgres.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD=$(cat /run/secrets/replicator-password)
  until pg_isready -h "$PRIMARY_HOST" -p 5432; do sleep 1; done
  gosu postgres pg_basebackup -h "$PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" -R -X stream -c fast \
    -d "application_name=$NODE_NAME"
  chmod 700 "$PGDATA"
fi
exec gosu postgres postgres -D "$PGDATA"
