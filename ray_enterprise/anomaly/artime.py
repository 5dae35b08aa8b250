"""ARTime (Hampton, 2021): adaptive resonance over wavelet features of a down-sampled series.

Written from the algorithm's description in its authors' repository (ARTimeNAB.jl, linked from
NAB), to compare with its published NAB outputs row by row. Provenance: that
repository is AGPL-3; this module is our own rewrite from the description, and no code was
copied from it or from any other repository. In outline:

- every ``step`` values (``step`` chosen so the probationary period holds ~13 windows) one
  value stands for them: the mean, or the extreme furthest from a running average when it is
  at least 10 % away from the mean; it is put on one of ``levels`` levels of the series' range
  and snapped to the running median level when close to it;
- the last ``window`` such values, and their Haar wavelet transform (both scaled to 0..1), are
  one feature vector;
- a fuzzy ART network with two vigilances (dual-vigilance fuzzy ART) learns categories of those
  vectors: a vector that resonates with no category (similarity below the lower vigilance)
  founds a new one and is a candidate anomaly;
- the vigilances start from the similarity the probationary period's vectors have among
  themselves and then follow the series: the upper one is the running mean similarity, the
  lower one climbs towards recent similarities and falls back after surprises;
- a candidate is reported, with a score from how far below the vigilances its similarity was
  and how different its level is, unless it comes right after another category or anomaly.

Like NAB's other detectors it is given the series' minimum, maximum and length in advance (the
scale of its levels and its probationary period): a streaming shard knows neither, so this
detector is for the reproduction, not the default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ray_enterprise.anomaly.detectors import Score

__all__ = ["ARTime", "DualVigilanceART", "haar"]

FloatArray = npt.NDArray[np.float64]


def haar(x: FloatArray) -> FloatArray:
    """The full orthonormal Haar transform of a power-of-two length vector: the coarsest
    average, then the details from coarsest to finest, each signed odd minus even (the sign
    matters: the features are rescaled to 0..1 afterwards)."""
    out: list[FloatArray] = []
    current = np.asarray(x, dtype=np.float64)
    while len(current) > 1:
        even, odd = current[0::2], current[1::2]
        out.insert(0, (odd - even) / math.sqrt(2.0))
        current = (even + odd) / math.sqrt(2.0)
    return np.concatenate([current, *out])


class DualVigilanceART:
    """Fuzzy ART with an upper vigilance (learn into the categories it clears) and a lower one
    (below it nothing resonates). Inputs are complement coded, so every input has the same
    norm. ``similarity`` is the best match of the last input and ``energy`` that category's
    agreement on the newest level."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.weights: FloatArray | None = None
        self.rho_lb = self.rho_ub = 0.0
        self.similarity = self.energy = 0.0

    def train(self, features: FloatArray, *, learning: bool = True) -> bool:
        """Present one vector; returns True when it resonated with a category."""
        sample = np.concatenate([features, 1.0 - features])
        if self.weights is None:
            # The first input only creates the all-ones category that everything matches weakly.
            self.weights = np.ones((1, 2 * self.dim))
            self.similarity = self.energy = 0.0
            return True
        weights = self.weights
        common = np.minimum(sample, weights)
        size = weights.sum(axis=1)
        size = np.where(size == 0.0, 0.001, size)
        fit = common.sum(axis=1) / size
        newest = [self.dim - 1, 2 * self.dim - 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            energy = common[:, newest].sum(axis=1) / weights[:, newest].sum(axis=1)
        match = fit**3 * energy**2
        best = int(np.argmax(match))
        if match[best] > 0.0:
            self.similarity, self.energy = float(match[best]), float(energy[best])
        else:
            self.similarity = self.energy = 0.0
        if not learning:
            return False
        upper = match >= self.rho_ub
        if upper.any():
            weights[upper] = common[upper]
            return True
        self.weights = np.vstack([weights, sample])
        return bool(match[best] >= self.rho_lb)

    def train_batch(self, rows: FloatArray) -> list[float]:
        similarities = []
        for row in rows:
            self.train(row)
            similarities.append(self.similarity)
        return similarities


def _similarity(a: FloatArray, b: FloatArray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0:
        return 1.0 - nb
    if nb == 0.0:
        return 1.0 - na
    return float(np.dot(a, b) / (na * nb))


class ARTime:
    """One series of ``length`` values within ``low``..``high``."""

    def __init__(
        self,
        *,
        low: float,
        high: float,
        length: int,
        window: int = 8,
        windows_per_probation: int = 13,
        snap: float = 0.075,
        levels: int = 80,
        initial_rho: float = 0.8,
    ) -> None:
        self.params = {
            "low": low,
            "high": high,
            "length": length,
            "window": window,
            "windows_per_probation": windows_per_probation,
            "snap": snap,
            "levels": levels,
            "initial_rho": initial_rho,
        }
        self.low, self.high, self.window, self.snap, self.levels = low, high, window, snap, levels
        self.initial_rho = initial_rho
        probation = math.floor(0.15 * length) if length < 5000 else 750
        probation -= probation % 2
        self.step = max(1, probation // (window * windows_per_probation))
        self.trend = probation // self.step
        self.mask = int(window * 1.5)
        self.art = DualVigilanceART(2 * window)
        self.i = 1  # raw values seen, counted from 1
        self.dsi = 1  # down-sampled values, counted from 1
        self.raw = np.zeros(self.step)
        self.average = 0.0
        self.level_counts = np.zeros(levels + 1, dtype=np.int64)
        self.median_level = self.below = self.above = 0
        self.recent = np.zeros(window)
        self.probation_features: list[FloatArray] = []
        self.last_anomaly_i = self.last_rho_update_i = self.no_new_category = 0
        self.last_anomaly_similarity = 0.0
        self.mask_after_category = False
        self.anomaly_similarities: list[float] = []
        self.similarity_sum = 0.0
        self.similarity_n = 0
        self.similarities = np.ones(self.trend // 2 + 1)
        self.shortfalls = np.zeros(self.trend + 1)

    def score_and_learn(self, value: float, ts: float) -> Score:
        self.raw = np.append(self.raw[1:], value)
        anomaly = 0.0
        if self.i % self.step == 0:
            anomaly = self._features(self._downsample())
            self.dsi += 1
        self.i += 1
        return Score(anomaly, min(1.0, self.dsi / max(self.trend, 1)))

    def _downsample(self) -> float:
        mean, top, bottom = float(self.raw.mean()), float(self.raw.max()), float(self.raw.min())
        if self.dsi == 1:
            self.average = mean
        self.average = (self.average + mean) / 2.0
        value = top
        if abs(top - self.average) < abs(bottom - self.average):
            value = bottom  # a dip below the average
        if abs(value - mean) < 0.1 * mean:
            value = mean  # an extreme counts only 10 % away from the mean
        value -= self.low
        if self.high != self.low:
            value /= self.high - self.low
        level = round(value * self.levels)
        value = level / self.levels
        return self._snap(level, value)

    def _snap(self, level: int, value: float) -> float:
        """Follow the median level with counts per level; a value near it becomes it."""
        counts = self.level_counts
        counts[level] += 1
        half = self.dsi // 2
        if self.dsi == 1:
            self.median_level = level
        if self.median_level > level:
            self.below += 1
        elif self.median_level < level:
            self.above += 1
        if half < self.above:
            self.below += int(counts[self.median_level])
            self.median_level += 1
            while counts[self.median_level] == 0:
                self.median_level += 1
            self.above -= int(counts[self.median_level])
        elif half < self.below:
            self.above += int(counts[self.median_level])
            self.median_level -= 1
            while counts[self.median_level] == 0:
                self.median_level -= 1
            self.below -= int(counts[self.median_level])
        median = self.median_level / self.levels
        return median if abs(value - median) < self.snap else value

    def _features(self, value: float) -> float:
        self.recent = np.append(self.recent[1:], value)
        features = np.zeros(2 * self.window)
        if self.dsi >= self.window:
            shape = _unit(self.recent)
            features = np.concatenate([_unit(haar(shape)), self.recent])
        i = self.dsi
        if i > self.trend:
            return self._detect(features, i)
        self.probation_features.append(features)
        if i == self.trend:
            rho = self._initial_rho(np.array(self.probation_features[self.window - 1 :]))
            self.art.rho_lb = self.art.rho_ub = rho
            for k, row in enumerate(self.probation_features, start=1):
                self._detect(row, k)
            self.probation_features = []
        return 0.0

    def _initial_rho(self, rows: FloatArray) -> float:
        """The mean similarity an ART at ``initial_rho`` reaches on the probationary vectors,
        presented from the least to the most typical."""
        n = len(rows)
        sim = np.ones((n, n))
        for a in range(n):
            for b in range(a):
                sim[a, b] = sim[b, a] = _similarity(rows[a], rows[b])
        order = np.argsort(sim.sum(axis=0), kind="stable")
        art = DualVigilanceART(self.art.dim)
        art.rho_lb = art.rho_ub = self.initial_rho
        similarities = art.train_batch(rows[order])
        return float(np.mean(similarities[self.trend // 2 - 1 :]))

    def _detect(self, features: FloatArray, i: int) -> float:
        art = self.art
        since_anomaly = i - self.last_anomaly_i
        rho_after_anomaly = since_anomaly == self.mask
        rho_for_trend = i - self.last_rho_update_i >= self.trend // 2
        after_anomaly = since_anomaly <= self.mask
        settled = self.no_new_category >= self.mask
        if i > self.trend + self.mask and self.mask_after_category and settled:
            self.mask_after_category = False
        new_category = not art.train(features, learning=i >= self.window)
        self.no_new_category = 0 if new_category else self.no_new_category + 1
        similarity = art.similarity
        self.similarity_sum += similarity
        self.similarity_n += 1
        self.similarities = np.append(self.similarities[1:], similarity)
        self.shortfalls = np.append(self.shortfalls[1:], art.rho_ub - similarity)
        if since_anomaly < self.mask and self.anomaly_similarities:
            self.anomaly_similarities[-1] = min(self.anomaly_similarities[-1], similarity)
        masked = self.mask_after_category or after_anomaly
        scale = 0.90 if after_anomaly else 0.70
        below_last = similarity < self.last_anomaly_similarity * scale
        anomaly = 0.0
        if i > self.trend and new_category and (not masked or below_last):
            anomaly = self._confidence(similarity, art.energy)
            self.anomaly_similarities.append(similarity)
            self.last_anomaly_similarity = similarity
            self.last_anomaly_i = i
        self.mask_after_category = new_category or self.mask_after_category
        if i > self.trend and (rho_after_anomaly or rho_for_trend):
            self._update_vigilance(i)
        return anomaly

    def _update_vigilance(self, i: int) -> None:
        art = self.art
        lowest = float(self.similarities.min())
        upper = min(0.97, self.similarity_sum / self.similarity_n)
        lower = art.rho_lb
        if lower <= lowest:
            lower += (lowest - lower) * 0.19
        else:
            fall = 0.0
            if i > self.trend * 2:
                short = self.shortfalls[self.shortfalls > 0.05]
                if len(short):
                    fall = float(np.minimum(0.37, short).mean())
            lower -= max(0.01, fall) / 2.0
            if self.anomaly_similarities:
                lower = max(float(np.mean(self.anomaly_similarities)), lower)
        art.rho_lb, art.rho_ub = min(upper, lower), upper
        self.last_rho_update_i = i
        self.mask_after_category = True

    def _confidence(self, similarity: float, energy: float) -> float:
        similarity = min(0.999, similarity)
        gap = 1.0 - similarity
        upper = (gap - (1.0 - self.art.rho_ub)) / gap
        lower = (gap - (1.0 - self.art.rho_lb)) / gap
        return round(min(1.0, upper * 0.35 + lower * 0.65 + (1.0 - energy) * 1.5), 6)

    def to_state(self) -> dict[str, Any]:
        return {"kind": "artime", "params": dict(self.params), "detector": self}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ARTime:
        detector: ARTime = state["detector"]
        return detector


def _unit(x: FloatArray) -> FloatArray:
    shifted = x - x.min()
    top = shifted.max()
    return shifted / top if top != 0 else shifted
