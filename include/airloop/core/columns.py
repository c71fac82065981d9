"""The column and table names of airloop's own tables, whatever a use case calls its columns.

Events, labels and feature rows are renamed to these when the feature pipeline builds them;
training sets, the prediction log and monitoring read them back by these names.
"""

from __future__ import annotations

EVENT_ID = "event_id"
EVENT_TS = "event_timestamp"  # when an event happened; on a feature row, since when it was known
LABEL = "label"
AVAILABLE_AT = "available_at"  # when a label became known
SCORE = "__score__"  # the model's score, beside its inputs in a training reference

EVENTS_TABLE = "_events"  # the offline store's table of prediction events
LABELS_TABLE = "_labels"  # the offline store's table of outcomes, with their arrival time
