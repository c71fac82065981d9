"""Drift between a reference and a current sample: effect sizes, judged against their own noise.

At n ≈ 100k, Kolmogorov-Smirnov and chi² p-values call trivial shifts significant, so the
verdicts here come from effect sizes with thresholds from the use case: the population
stability index (PSI), the Jensen-Shannon distance and the Wasserstein distance in units of the
reference's standard deviation. At n ≈ 30 the opposite fails: two samples of one distribution
differ by chance more than any usual threshold. So a feature drifts only when its score reaches
the larger of the use case's threshold and the score that samples of these sizes reach by
chance with probability ``significance`` (the *noise threshold*, :func:`noise_threshold`):

- PSI over B bins of samples of n and m values is, with no drift, about
  ``(1/n + 1/m) · χ²(B - 1)``; the noise threshold is that at its ``1 - significance``
  quantile. Bins hold their count plus half a row (:data:`PRIOR`): clipped at 1e-4 instead, a
  bin left empty by 30 rows added 0.7 to the PSI, and 37 % of samples of one distribution
  breached a rule that 1 % should.
- The Jensen-Shannon divergence is about PSI / 8 at small differences, so the distance's noise
  threshold is the square root of the PSI's divided by 8.
- The Wasserstein distance: ``√(nm / (n + m)) · W1`` tends to ``∫ |B(u)| dQ(u)`` over the
  reference's quantile function Q, B a Brownian bridge; its quantile is simulated on the
  reference's own quantiles (:func:`wasserstein_noise`).

And below :data:`~airloop.monitoring.minimums.MIN_ROWS` values on either side a feature gets no verdict at all ("not enough
data"), whatever the scores say. Everything is vectorised numpy: one sort per numeric column
and one pass of ``searchsorted``, so time grows with the rows, not faster.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

from airloop.monitoring.minimums import MIN_ROWS

Measure = Literal["psi", "jensen_shannon", "wasserstein"]
BINS = 10
PRIOR = 0.5  # rows added to every bin (Jeffreys' prior): no empty bin, no infinite log ratio
SIGNIFICANCE = 0.01  # how often samples of one distribution may breach the noise threshold
MISSING = "__missing__"
MAX_SCORE = (
    1e6  # what "a constant reference changed" or "no reference at all" scores: finite, JSON-safe
)
QUANTILES = np.linspace(0, 1, 1001)  # where the Wasserstein distance compares the two samples
BRIDGES = 1000  # simulated Brownian bridges behind the Wasserstein noise threshold
CHECKED = "checked"


@dataclass(frozen=True)
class Distance:
    """A drift score with what judging it needs: the counts compared and their noise threshold.

    ``reference_rows``/``current_rows``: the values compared (a number's rows with a value; for
    categories, every row, missing being a category). ``noise``: the score samples of these
    sizes from one distribution stay below with probability ``1 - significance``.
    """

    score: float
    reference_rows: int
    current_rows: int
    noise: float
    bins: int | None = None


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift score, the threshold applied and why, its verdict, the missing shares.

    ``threshold`` is the one applied: the larger of ``configured_threshold`` (the use case's)
    and ``noise_threshold`` (what chance reaches at these counts). ``status`` is ``checked``,
    or says why there is no verdict (``drifted`` is then False).
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    measure: str
    score: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    missing_share_reference: float
    missing_share_current: float
    configured_threshold: float = 0.0
    noise_threshold: float = 0.0
    bins: int | None = None
    status: str = CHECKED

    @property
    def checked(self) -> bool:
        """Whether the feature got a verdict (enough values on both sides)."""
        return self.status == CHECKED


@dataclass
class DriftReport:
    """The per-feature verdicts, and dataset drift when a share of the features drifts.

    The share counts the features that got a verdict only: one without enough values is
    neither drifting nor stable.
    """

    features: list[FeatureDrift] = field(default_factory=list)
    share_threshold: float = 0.3
    significance: float = SIGNIFICANCE
    min_rows: int = MIN_ROWS

    @property
    def checked(self) -> list[FeatureDrift]:
        """The features that got a verdict."""
        return [f for f in self.features if f.checked]

    @property
    def drifted(self) -> list[FeatureDrift]:
        """The features that drifted."""
        return [f for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        """The share of the features with a verdict that drifted."""
        checked = self.checked
        return len(self.drifted) / len(checked) if checked else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether enough features drifted to call the data set drifted."""
        return bool(self.checked) and self.share_drifted >= self.share_threshold

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "share_threshold": self.share_threshold,
            "significance": self.significance,
            "min_rows": self.min_rows,
            "checked": len(self.checked),
            "not_enough_data": len(self.features) - len(self.checked),
            "features": [asdict(f) for f in self.features],
        }


# -- the measures -----------------------------------------------------------------------------


def _proportions(counts: np.ndarray) -> np.ndarray:
    """Shares of the bins, each bin holding half a row more than it counted (never zero)."""
    counts = np.asarray(counts, dtype="float64")
    return (counts + PRIOR) / (counts.sum() + PRIOR * len(counts))


def psi_from_proportions(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index of two binned distributions (proportions, no zeros)."""
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon_from_proportions(ref: np.ndarray, cur: np.ndarray) -> float:
    """Jensen-Shannon distance, natural log as in scipy and Evidently: in [0, sqrt(ln 2)]."""
    ref, cur = ref / ref.sum(), cur / cur.sum()
    mid = (ref + cur) / 2
    divergence = 0.5 * np.sum(ref * np.log(ref / mid)) + 0.5 * np.sum(cur * np.log(cur / mid))
    return float(np.sqrt(max(divergence, 0.0)))


def quantile_edges(reference: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles; ties collapse, so a constant gives none."""
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of values per bin between the inner edges (one more bin than edges)."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """W1 between the two empirical distributions, divided by the reference's std.

    Both samples are reduced to 1,000 quantiles: exact for the first decimals and linear in n.
    """
    distance = float(
        np.mean(np.abs(np.quantile(reference, QUANTILES) - np.quantile(current, QUANTILES)))
    )
    scale = float(np.std(reference))
    if scale == 0:
        return 0.0 if distance == 0 else float("inf")
    return distance / scale


# -- their noise ------------------------------------------------------------------------------


def chi2_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile of χ² with ``dof`` degrees of freedom (Wilson-Hilferty:
    within 1 % of the exact value at the 0.99 quantile for any ``dof``)."""
    if dof <= 0:
        return 0.0
    z = NormalDist().inv_cdf(probability)
    a = 2 / (9 * dof)
    return dof * max(1 - a + z * math.sqrt(a), 0.0) ** 3


def noise_threshold(
    measure: Measure, reference_rows: int, current_rows: int, bins: int, significance: float
) -> float:
    """The PSI or Jensen-Shannon distance that samples of these sizes from one distribution,
    binned in ``bins``, exceed with probability ``significance``: ``(1/n + 1/m) · χ²(bins - 1)``
    at its ``1 - significance`` quantile for PSI, the square root of an eighth of that for
    Jensen-Shannon. Infinite when a side is empty: nothing can be said."""
    if measure == "wasserstein":
        raise ValueError("the Wasserstein noise threshold needs the reference: wasserstein_noise")
    if reference_rows <= 0 or current_rows <= 0:
        return float("inf")
    psi = (1 / reference_rows + 1 / current_rows) * chi2_quantile(1 - significance, bins - 1)
    return psi if measure == "psi" else math.sqrt(psi / 8)


@functools.cache
def _bridges() -> np.ndarray:
    """|B(u)| of :data:`BRIDGES` Brownian bridges at the midpoints of :data:`QUANTILES`' steps,
    one per row: drawn once per process, from a fixed seed, so a re-run gives the same verdict."""
    steps = len(QUANTILES) - 1
    rng = np.random.default_rng(20240101)
    walk = np.cumsum(rng.normal(scale=math.sqrt(1 / steps), size=(BRIDGES, steps)), axis=1)
    walk = np.hstack([np.zeros((BRIDGES, 1)), walk])
    bridge = walk - QUANTILES * walk[:, -1:]
    return np.abs((bridge[:, 1:] + bridge[:, :-1]) / 2)


def wasserstein_noise(
    reference: np.ndarray, reference_rows: int, current_rows: int, significance: float
) -> float:
    """The normalised W1 that samples of these sizes from the reference's distribution exceed
    with probability ``significance``: ``√(1/n + 1/m)`` times the quantile of
    ``∫ |B(u)| dQ(u) / sd``, Q the reference's quantile function, sd its standard deviation
    and B a Brownian bridge."""
    if reference_rows <= 0 or current_rows <= 0:
        return float("inf")
    scale = float(np.std(reference))
    if scale == 0:
        return 0.0
    steps = np.diff(np.quantile(reference, QUANTILES)) / scale
    limit = float(np.quantile(_bridges() @ steps, 1 - significance))
    return limit * math.sqrt(1 / reference_rows + 1 / current_rows)


# -- a column's distance ----------------------------------------------------------------------


def numeric_distance(
    reference: pd.Series,
    current: pd.Series,
    measure: Measure,
    significance: float = SIGNIFICANCE,
) -> Distance:
    """Drift of a numeric column by ``measure`` over the values it has, with its noise threshold;
    infinite when one side has no values and the other has."""
    ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype="float64")
    cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype="float64")
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    n, m = len(ref), len(cur)
    if n == 0 or m == 0:
        return Distance(0.0 if n == m else float("inf"), n, m, 0.0)
    if measure == "wasserstein":
        noise = wasserstein_noise(ref, n, m, significance)
        return Distance(wasserstein_normed(ref, cur), n, m, noise)
    edges = quantile_edges(ref)
    ref_p, cur_p = _proportions(binned(ref, edges)), _proportions(binned(cur, edges))
    score = (
        psi_from_proportions(ref_p, cur_p)
        if measure == "psi"
        else jensen_shannon_from_proportions(ref_p, cur_p)
    )
    bins = len(edges) + 1
    return Distance(score, n, m, noise_threshold(measure, n, m, bins, significance), bins)


def categorical_distance(
    reference: pd.Series,
    current: pd.Series,
    measure: Measure,
    significance: float = SIGNIFICANCE,
) -> Distance:
    """Drift of a categorical column (missing is a category of its own) by ``measure``, with its
    noise threshold over the categories of either side."""
    if measure == "wasserstein":
        raise ValueError("the Wasserstein distance needs ordered values; use psi or jensen_shannon")
    ref = reference.astype("string").fillna(MISSING)
    cur = current.astype("string").fillna(MISSING)
    ref_counts, cur_counts = ref.value_counts(), cur.value_counts()
    categories = ref_counts.index.union(cur_counts.index)
    ref_p = _proportions(ref_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64"))
    cur_p = _proportions(cur_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64"))
    score = (
        psi_from_proportions(ref_p, cur_p)
        if measure == "psi"
        else jensen_shannon_from_proportions(ref_p, cur_p)
    )
    n, m, bins = len(ref), len(cur), len(categories)
    return Distance(score, n, m, noise_threshold(measure, n, m, bins, significance), bins)


def numeric_drift(reference: pd.Series, current: pd.Series, measure: Measure) -> float:
    """Drift of a numeric column by ``measure``; infinite when one side has no values."""
    return numeric_distance(reference, current, measure).score


def categorical_drift(reference: pd.Series, current: pd.Series, measure: Measure) -> float:
    """Drift of a categorical column (missing is a category of its own) by ``measure``."""
    return categorical_distance(reference, current, measure).score


# -- the verdict ------------------------------------------------------------------------------


def not_enough(counted: int, needed: int, what: str = "values") -> str:
    """The status of a check without a verdict: the count it had and the minimum."""
    return f"not enough data: {counted} {what}, {needed} needed"


def judge(
    distance: Distance, threshold: float, min_rows: int = MIN_ROWS
) -> tuple[bool, float, str]:
    """A distance's verdict: (drifted, threshold applied, status).

    No verdict (not drifted, ``not enough data``) with fewer than ``min_rows`` values on
    either side, unless one side has none at all where the other has them (a column gone
    missing, or a new one: that is drift at any count). Otherwise drifted at a score of at
    least the larger of ``threshold`` and the noise threshold.
    """
    n, m = distance.reference_rows, distance.current_rows
    emptied = (n == 0) != (m == 0)
    if not emptied and min(n, m) < min_rows:
        return False, threshold, not_enough(min(n, m), min_rows)
    applied = max(threshold, distance.noise)
    score = min(distance.score, MAX_SCORE)
    return bool(score >= applied), applied, CHECKED


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else MAX_SCORE


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    numeric_measure: Measure = "psi",
    categorical_measure: Measure = "psi",
    threshold: float = 0.2,
    thresholds: dict[str, float] | None = None,
    share_threshold: float = 0.3,
    significance: float = SIGNIFICANCE,
    min_rows: int = MIN_ROWS,
) -> DriftReport:
    """Per-feature drift of ``current`` against ``reference``: a feature with at least
    ``min_rows`` values on each side drifts at a score of at least its threshold and the noise
    threshold at ``significance`` (:func:`judge`)."""
    thresholds = thresholds or {}
    report = DriftReport(
        share_threshold=share_threshold, significance=significance, min_rows=min_rows
    )
    for kind, columns, measure in (
        ("numeric", numeric, numeric_measure),
        ("categorical", categorical, categorical_measure),
    ):
        for column in columns:
            if column not in reference or column not in current:
                continue
            ref, cur = reference[column], current[column]
            distance = (
                numeric_distance(ref, cur, measure, significance)
                if kind == "numeric"
                else categorical_distance(ref, cur, measure, significance)
            )
            configured = thresholds.get(column, threshold)
            drifted, applied, status = judge(distance, configured, min_rows)
            score = 0.0 if np.isnan(distance.score) else min(distance.score, MAX_SCORE)
            report.features.append(
                FeatureDrift(
                    feature=column,
                    kind=kind,  # type: ignore[arg-type]
                    measure=measure,
                    score=round(score, 6),
                    threshold=round(_finite(applied), 6),
                    drifted=drifted,
                    reference_rows=distance.reference_rows,
                    current_rows=distance.current_rows,
                    missing_share_reference=float(ref.isna().mean()) if len(ref) else 0.0,
                    missing_share_current=float(cur.isna().mean()) if len(cur) else 0.0,
                    configured_threshold=configured,
                    noise_threshold=round(_finite(distance.noise), 6),
                    bins=distance.bins,
                    status=status,
                )
            )
    return report
