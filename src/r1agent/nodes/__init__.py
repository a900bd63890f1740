"""One node per module. Each is a function ``(state, runtime, *, deps...) -> partial update``; the
graph binds the keyword-only dependencies, so tests can call a node directly with tiny real ones."""
