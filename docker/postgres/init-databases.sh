#!/bin/sh
# First start of the postgres container: the databases airloop uses (AIRLOOP_DATABASES),
# owned by POSTGRES_USER. Runs once, from /docker-entrypoint-initdb.d.
set -eu
for db in $AIRLOOP_DATABASES; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
