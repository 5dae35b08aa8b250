"""Search over documents kept in the store, bodies read through the cache, shaped by the config's
``search`` section.

With ``config_section: search`` (cluster/demo.yaml) every setting takes effect live:
``enabled``, ``index_name`` (the documents are the store's keys ``<index_name>:...``; a change
re-indexes), ``default_limit`` and ``max_limit``, ``timeout_seconds`` (each call a search makes
to the cache or the store), ``hybrid`` with ``dense_weight`` (BM25 blended with a character
trigram similarity, which finds misspelt words BM25 cannot), ``reranking_enabled`` (candidates
with the query's words next to each other first) and ``query_cache_ttl_seconds``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import Counter, defaultdict
from importlib import resources
from typing import Any

from ray_enterprise.config.schema import EnterpriseSearchConfig
from ray_enterprise.service import Health, Service

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25Index:
    """A small in-memory BM25 index; pure, so it is tested without Ray."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, dict[str, int]] = defaultdict(dict)
        self._lengths: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, doc_id: str, text: str) -> None:
        if doc_id in self._lengths:
            self.remove(doc_id)
        terms = Counter(tokenize(text))
        self._lengths[doc_id] = sum(terms.values())
        for term, count in terms.items():
            self._postings[term][doc_id] = count

    def remove(self, doc_id: str) -> None:
        self._lengths.pop(doc_id, None)
        for docs in self._postings.values():
            docs.pop(doc_id, None)

    def search(self, query: str, k: int = 5) -> list[tuple[str, float]]:
        n = len(self._lengths)
        if n == 0:
            return []
        avg = sum(self._lengths.values()) / n
        scores: dict[str, float] = defaultdict(float)
        for term in set(tokenize(query)):
            docs = self._postings.get(term)
            if not docs:
                continue
            idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            for doc_id, tf in docs.items():
                norm = tf + self.k1 * (1 - self.b + self.b * self._lengths[doc_id] / avg)
                scores[doc_id] += idf * tf * (self.k1 + 1) / norm
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [(doc_id, round(score, 4)) for doc_id, score in ranked[:k]]


def bundled_corpus() -> list[dict[str, str]]:
    text = resources.files("ray_enterprise.examples").joinpath("data/corpus.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def trigrams(text: str) -> Counter[str]:
    """Character trigrams of each word (padded), the "dense" side of a hybrid search: a word
    misspelt by one letter still shares most of its trigrams with the right one."""
    grams: Counter[str] = Counter()
    for word in tokenize(text):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[g] for g, count in a.items() if g in b)
    norm = math.sqrt(sum(c * c for c in a.values())) * math.sqrt(sum(c * c for c in b.values()))
    return dot / norm if norm else 0.0


def adjacency(query: str, text: str) -> int:
    """How many consecutive query word pairs appear next to each other in ``text``."""
    words = tokenize(query)
    body = f" {' '.join(tokenize(text))} "
    return sum(1 for a, b in itertools.pairwise(words) if f" {a} {b} " in body)


class Ranker:
    """BM25, optionally blended with trigram similarity and re-ranked by phrase adjacency."""

    def __init__(self) -> None:
        self.bm25 = BM25Index()
        self._grams: dict[str, Counter[str]] = {}
        self._texts: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.bm25)

    def add(self, doc_id: str, text: str) -> None:
        self.bm25.add(doc_id, text)
        self._grams[doc_id] = trigrams(text)
        self._texts[doc_id] = text

    def rank(
        self, query: str, k: int, *, hybrid: bool, dense_weight: float, rerank: bool
    ) -> list[tuple[str, float]]:
        pool = max(k * 3, k) if rerank else k
        if not hybrid:
            ranked = self.bm25.search(query, pool)
        else:
            keyword = dict(self.bm25.search(query, len(self.bm25)))
            top = max(keyword.values(), default=0.0) or 1.0
            wanted = trigrams(query)
            blended = {
                doc_id: (1 - dense_weight) * keyword.get(doc_id, 0.0) / top
                + dense_weight * cosine(wanted, grams)
                for doc_id, grams in self._grams.items()
            }
            ordered = sorted(blended.items(), key=lambda item: (-item[1], item[0]))
            ranked = [(d, round(s, 4)) for d, s in ordered[:pool] if s > 0]
        if rerank:
            # Stable: among equal adjacency the first ranking's order stays.
            ranked = sorted(ranked, key=lambda item: -adjacency(query, self._texts[item[0]]))
        return ranked[:k]


class SearchDisabledError(RuntimeError):
    """``search.enabled`` is false in the running config."""


class SearchService(Service):
    """Loads the bundled corpus into the store if it is empty, then indexes the store."""

    async def start(self) -> None:
        self._section = EnterpriseSearchConfig(index_name=str(self.config.get("index", "doc")))
        self._ranker = Ranker()
        self._indexed_version = 0
        self._results: dict[tuple[str, int], tuple[float, list[dict[str, Any]]]] = {}
        self.queries = 0
        self.query_cache_hits = 0
        store = await self.dependency("database")
        prefix = self._prefix
        if not await store.scan.remote(prefix):
            for doc in bundled_corpus():
                await store.put.remote(f"{prefix}{doc['id']}", doc)
        await self.refresh()

    @property
    def _prefix(self) -> str:
        return f"{self._section.index_name}:"

    async def on_config(self, section: str, value: Any, version: int) -> None:
        if not isinstance(value, EnterpriseSearchConfig):
            value = EnterpriseSearchConfig.model_validate(value)
        reindex = value.index_name != self._section.index_name
        self._section = value
        self._results.clear()
        if reindex:
            self._ranker = Ranker()
            self._indexed_version = 0
            await self.refresh()

    async def _bounded(self, call: Any) -> Any:
        timeout = self._section.timeout_seconds
        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"a call of this search took longer than search.timeout_seconds ({timeout} s)"
            ) from None

    async def refresh(self) -> int:
        """Index documents written since the last refresh; returns how many were added."""
        store = await self.dependency("database")
        rows = await self._bounded(store.scan.remote(self._prefix, self._indexed_version))
        for key, doc, version in rows:
            self._ranker.add(key, f"{doc.get('title', '')} {doc.get('body', '')}")
            self._indexed_version = max(self._indexed_version, version)
        if rows:
            self._results.clear()  # new documents: earlier answers may be stale
        return len(rows)

    async def search(self, query: str, k: int | None = None) -> list[dict[str, Any]]:
        section = self._section
        if not section.enabled:
            raise SearchDisabledError("search is disabled by the config (search.enabled: false)")
        k = section.default_limit if k is None else k
        if not 1 <= k <= section.max_limit:
            raise ValueError(f"k={k} is outside 1..search.max_limit ({section.max_limit})")
        self.queries += 1
        now = time.monotonic()
        cached = self._results.get((query, k))
        if cached is not None and now < cached[0]:
            self.query_cache_hits += 1
            return list(cached[1])
        ranked = self._ranker.rank(
            query,
            k,
            hybrid=section.hybrid,
            dense_weight=section.dense_weight,
            rerank=section.reranking_enabled,
        )
        cache = await self.dependency("cache")
        hits = []
        for key, score in ranked:
            doc = await self._bounded(cache.get.remote(key))
            if doc is not None:
                hits.append({"id": doc["id"], "title": doc["title"], "score": score})
        if section.query_cache_ttl_seconds > 0:
            self._results[(query, k)] = (now + section.query_cache_ttl_seconds, hits)
        return hits

    async def stats(self) -> dict[str, Any]:
        return {
            "documents": len(self._ranker),
            "queries": self.queries,
            "query_cache_hits": self.query_cache_hits,
            "index": self._section.index_name,
        }

    async def check_health(self) -> Health:
        if not self._section.enabled:
            return Health.healthy("disabled by config (search.enabled: false)")
        if len(self._ranker) == 0:
            return Health.unhealthy(f"index {self._section.index_name!r} is empty")
        return Health.healthy(f"{len(self._ranker)} documents")
