"""The LangGraph server's add-ons: auth, checkpointer and the handoff console (served through langgraph.json)."""
