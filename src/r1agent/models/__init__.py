"""Model loading: the local chat model (any transformers folder) or one on an OpenAI-compatible server
(``remote``), embeddings, and R1 trace parsing."""
