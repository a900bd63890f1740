"""The guardrail tests' stack: the real default parts (classifier, tools, embedded Qdrant, SQLite orders,
tickets and checkpointer) in a folder of the test's own, around a chat model the test chooses.

:class:`ParrotChat` is a deterministic stand-in for the chat model: it parrots its whole last prompt
message (the <sources> and <tool_results> blocks and the question), optionally after a think trace.

A parrot is the worst case for leaks: whatever a planted document or a tool result carries reaches the
draft verbatim, so the output guardrails (PII masking, the think split) are tested against everything the
model could have said. It is a unit-style fake: real-model behaviour is covered by slow tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from r1agent.deps import DEMO_SOURCE_PREFIX, Deps
from r1agent.knowledge import KnowledgeBase, demo_kb_files
from r1agent.models.backend import ChatBackend, Measurement
from r1agent.settings import Settings
from r1agent.tickets import SqliteTicketStore
from r1agent.tools.orders import GetOrder, ListOrders, OrderStore

ORDER_TOOLS = frozenset({"get_order_details", "list_my_orders"})


class ParrotModel(BaseChatModel):
    think: str = ""
    """When set, the reply starts with ``<think>{think}</think>``: the trace must never reach the customer."""
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "parrot"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append(list(messages))
        said = str(messages[-1].content)
        reply = f"<think>{self.think}</think>{said}" if self.think else said
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


@dataclass
class ParrotChat:
    """A :class:`r1agent.models.backend.ChatBackend` around :class:`ParrotModel`."""

    model: ParrotModel = field(default_factory=ParrotModel)
    name: str = "parrot"
    opens_think: bool = False

    @property
    def chat(self) -> BaseChatModel:
        return self.model

    def measure(self, messages: list[BaseMessage], completion: str) -> Measurement:
        words = sum(len(str(m.content).split()) for m in messages)
        return Measurement(input_tokens=words, output_tokens=len(completion.split()), mean_logprob=-0.2, finished=True)


@contextmanager
def guard_stack(real: Deps, root: Path, *, llm: ChatBackend) -> Iterator[tuple[Deps, OrderStore]]:
    """Deps on ``root``: the demo knowledge base in its own embedded Qdrant (so planted documents stay out
    of the session's), its own seeded SQLite orders (so planted addresses do too), the real classifier,
    filter and perceivers shared with ``real``. The shared parts are not closed here: the session owns them."""
    settings = Settings(data_dir=root, cache_dir=real.settings.cache_dir, max_new_tokens=real.settings.max_new_tokens)
    seed = [(path, DEMO_SOURCE_PREFIX + path.name) for path in demo_kb_files()]
    kb = KnowledgeBase.open(real.embeddings, collection="guard", path=root / "qdrant", seed=seed)
    store = OrderStore(root / "orders.sqlite")
    tickets = SqliteTicketStore(settings.tickets_path)
    tools = (GetOrder(store=store), ListOrders(store=store), *(t for t in real.tools if t.name not in ORDER_TOOLS))
    deps = Deps(
        settings=settings,
        llm=llm,
        embeddings=real.embeddings,
        kb=kb,
        classifier=real.classifier,
        tickets=tickets,
        tools=tools,
        images=real.images,
        audio=real.audio,
        content_filter=real.content_filter,
    )
    try:
        yield deps, store
    finally:
        kb.close()
        store.close()
        tickets.close()
