"""The mechanisms every layer shares, one helper each: errors, records, atomic files, polling,
HTTP calls, provenance. Nothing here knows about use cases, Airflow or the ML stack."""
