"""Learning from feedback: ratings and corrections, rewards, training data, and what they tune.

- :mod:`~r1agent.feedback.turns`: a thread's turns read back from its checkpoints;
- :mod:`~r1agent.feedback.store`: ratings and intent corrections (SQLite), :func:`record_feedback`;
- :mod:`~r1agent.feedback.reward`: a reward per turn (pure functions);
- :mod:`~r1agent.feedback.export`: DPO pairs and GRPO rows as JSON Lines for TRL;
- :mod:`~r1agent.feedback.tuning`: the handoff threshold and the intent overlay.

See docs/feedback.md. Nothing is imported here: the CLI's ``feedback`` group loads without torch.
"""
