#!/bin/sh
# Run the command given (`airflow scheduler`, `airloop serve`, `mlflow server ...`) in the
# project's environment; with no command, airloop's help.
set -e
if [ "$#" -eq 0 ]; then
    set -- airloop --help
fi
exec "$@"
