"""BM25 keyword search over documents kept in the store, bodies read through the cache."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from importlib import resources
from typing import Any

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


class SearchService(Service):
    """Loads the bundled corpus into the store if it is empty, then indexes the store."""

    async def start(self) -> None:
        self._index = BM25Index()
        self._indexed_version = 0
        self.queries = 0
        store = await self.dependency("database")
        if not await store.scan.remote("doc:"):
            for doc in bundled_corpus():
                await store.put.remote(f"doc:{doc['id']}", doc)
        await self.refresh()

    async def refresh(self) -> int:
        """Index documents written since the last refresh; returns how many were added."""
        store = await self.dependency("database")
        rows = await store.scan.remote("doc:", self._indexed_version)
        for key, doc, version in rows:
            self._index.add(key, f"{doc.get('title', '')} {doc.get('body', '')}")
            self._indexed_version = max(self._indexed_version, version)
        return len(rows)

    async def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        self.queries += 1
        cache = await self.dependency("cache")
        hits = []
        for key, score in self._index.search(query, k):
            doc = await cache.get.remote(key)
            if doc is not None:
                hits.append({"id": doc["id"], "title": doc["title"], "score": score})
        return hits

    async def stats(self) -> dict[str, Any]:
        return {"documents": len(self._index), "queries": self.queries}

    async def check_health(self) -> Health:
        if len(self._index) == 0:
            return Health.unhealthy("index is empty")
        return Health.healthy(f"{len(self._index)} documents")
