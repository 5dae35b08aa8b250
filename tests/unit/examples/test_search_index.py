from __future__ import annotations

from ray_enterprise.examples.search import BM25Index, bundled_corpus, tokenize


def test_bm25_ranks_the_document_about_the_query_first() -> None:
    index = BM25Index()
    for doc in bundled_corpus():
        index.add(doc["id"], f"{doc['title']} {doc['body']}")
    top = index.search("inverted index keyword search", k=3)
    titles = {d["id"]: d["title"] for d in bundled_corpus()}
    assert titles[top[0][0]] == "Inverted index"
    ranked = index.search("cache miss database memory", k=5)
    assert titles[ranked[0][0]] == "Caching"
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True) and len(scores) > 1


def test_re_adding_a_document_replaces_it_and_removal_forgets_it() -> None:
    index = BM25Index()
    index.add("a", "apples apples")
    index.add("a", "pears")
    assert index.search("apples") == []
    assert index.search("pears")[0][0] == "a"
    index.remove("a")
    assert index.search("pears") == []
    assert len(index) == 0


def test_tokenize_lowercases_and_drops_punctuation() -> None:
    assert tokenize("Hello, World! v2") == ["hello", "world", "v2"]
