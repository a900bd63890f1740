"""The knowledge base: Markdown/text files chunked, embedded and searched in Qdrant."""

from r1agent.knowledge.store import IngestReport, KnowledgeBase, chunk_document, demo_kb_files

__all__ = ["IngestReport", "KnowledgeBase", "chunk_document", "demo_kb_files"]
