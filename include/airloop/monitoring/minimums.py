"""The fewest rows a monitoring verdict needs, whatever a use case sets lower.

A use case's ``monitoring.min_rows`` and ``min_labelled`` can only raise these. They live apart
from the checks so that ``airloop init`` sizes the windows it proposes by them without
importing the checks' stack.
"""

from __future__ import annotations

# Values of a distribution, on each side, for a drift verdict (a feature's or the scores'):
# five expected per quantile bin of the ten the PSI uses, below which the chi² approximation
# behind the noise threshold is no longer one.
MIN_ROWS = 50
# Labelled predictions for a live-performance verdict, and of each class for a classification:
# a live ROC AUC on 20 labels is within about ±0.2 of the true one, on three positives chance.
MIN_LABELLED = 50
MIN_PER_CLASS = 10
