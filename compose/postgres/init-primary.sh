#!/bin/bash
# /docker-entrypoint-initdb.d on the first primary: switchyard's roles (docs/operations.md),
# replication over scram-sha-256, settings for failover and pg_rewind.
set -euo pipefail
agent_pw=$(cat /run/secrets/agent-password)
repl_pw=$(cat /run/secrets/replicator-password)
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
CREATE ROLE switchyard_agent WITH LOGIN PASSWORD '${agent_pw}';
GRANT pg_monitor, pg_signal_backend, pg_checkpoint TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_read_file(text) TO switchyard_agent;
GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only, synchronous_standby_names, primary_conninfo TO switchyard_agent;
GRANT SELECT ON pg_catalog.pg_file_settings TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_show_all_file_settings() TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text, bigint, bigint, boolean) TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_ls_dir(text, boolean, boolean) TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_stat_file(text, boolean) TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) TO switchyard_agent;
GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint, boolean) TO switchyard_agent;
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '${repl_pw}';
SQL
cat >> "$PGDATA/postgresql.conf" <<CONF
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_log_hints = on
password_encryption = 'scram-sha-256'
CONF
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
