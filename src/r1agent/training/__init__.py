"""Training from feedback (optional extra ``r1agent[train]``: TRL, PEFT, datasets).

:func:`r1agent.training.dpo.train_dpo` trains a LoRA adapter with DPO on exported preference pairs;
``R1AGENT_ADAPTER`` loads it (:mod:`r1agent.models.adapter`). Nothing here is imported by the agent
itself, so a deployment without the extra runs unchanged. See docs/feedback.md.
"""
