"""Model loading: the local chat model (any transformers folder), embeddings, and R1 trace parsing."""
