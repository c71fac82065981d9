"""airloop's own records: the monitoring ledger on disk and the metadata tables (P4, P7)."""
