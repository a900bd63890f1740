"""chunk_document: Markdown sections become titled chunks of bounded size."""

from __future__ import annotations

import itertools

import pytest

from r1agent.knowledge.store import CHUNK_CHARS, CHUNK_OVERLAP, chunk_document


def test_headings_become_titles() -> None:
    text = "# Returns\nintro\n## Shoes\nshoe rules\n### Worn shoes\nworn rules\n# Shipping\nship rules\n"
    chunks = chunk_document(text, markdown=True)
    assert [c.title for c in chunks] == ["Returns", "Returns › Shoes", "Returns › Shoes › Worn shoes", "Shipping"]
    assert "intro" in chunks[0].text
    assert "shoe rules" in chunks[1].text
    assert "worn rules" in chunks[2].text
    assert "ship rules" in chunks[3].text
    # A chunk never straddles two sections.
    assert "shoe rules" not in chunks[0].text
    assert "intro" not in chunks[3].text


def test_text_before_the_first_heading_has_no_title() -> None:
    chunks = chunk_document("preamble\n# A\nbody\n", markdown=True)
    assert [(c.title, "preamble" in c.text) for c in chunks] == [("", True), ("A", False)]


def test_plain_text_has_no_titles() -> None:
    chunks = chunk_document("# not a heading here\nbody", markdown=False)
    assert [c.title for c in chunks] == [""]
    assert chunks[0].text == "# not a heading here\nbody"


def test_long_section_is_split_with_overlap() -> None:
    words = [f"word{i:04d}" for i in range(600)]
    paragraphs = "\n\n".join(" ".join(words[i : i + 30]) for i in range(0, len(words), 30))
    chunks = chunk_document("# Catalogue\n" + paragraphs, markdown=True)
    assert len(chunks) > 3
    assert all(c.title == "Catalogue" for c in chunks)
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert all(w in joined for w in words)


def test_overlong_line_is_split_with_overlap() -> None:
    words = [f"w{i:04d}" for i in range(800)]
    chunks = chunk_document(" ".join(words), markdown=False)
    assert len(chunks) > 3
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks)
    for first, second in itertools.pairwise(chunks):
        # Consecutive pieces overlap, so a sentence cut in two survives whole in one of them.
        shared = set(first.text.split()) & set(second.text.split())
        assert shared
        assert len(" ".join(shared)) <= CHUNK_OVERLAP


@pytest.mark.parametrize("markdown", [True, False])
@pytest.mark.parametrize("text", ["", "   \n\n  "])
def test_empty_text_has_no_chunks(text: str, markdown: bool) -> None:
    assert chunk_document(text, markdown=markdown) == []
