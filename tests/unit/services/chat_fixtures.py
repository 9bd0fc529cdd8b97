"""ChatService wired on the in-memory fakes with a scripted chat model, for the chat use cases' tests.

The workspace holds two passages; with the 512-dimension hashing embedder ``QUESTION`` is near the first only
(cosine 0.57 against 0.2, either side of the 0.3 relevance floor) and ``UNANSWERABLE`` near neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from quarry.adapters.memory_usage import InMemoryUsageLedger
from quarry.models import Chunk, Document, DocumentSource, Workspace
from quarry.services.access import WorkspaceAccess
from quarry.services.budget import TokenBudget
from quarry.services.chat import ChatService
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.search import SearchService
from tests.fakes import FakeCatalog, FakeChatHistory, FakeVectorIndex, HashEmbedder, ScriptedChatModel

OWNER, READER, STRANGER = "ada", "bob", "eve"
WS = "ws"
PLIMSK = "The Plimsk observatory opened in 1911. Its telescope mirror is 2.4 metres wide."
TOLLAN = "The Tollan rail line opened in 2011 between the two valleys."
QUESTION = "How wide is the Plimsk telescope mirror?"
UNANSWERABLE = "Which painter made Mona Lisa?"  # near nothing
EMBEDDER = HashEmbedder(name="hash-512", dimensions=512)


@dataclass
class Chat:
    service: ChatService
    model: ScriptedChatModel
    history: FakeChatHistory
    ledger: InMemoryUsageLedger


def build_chat(*replies: str | list[str], daily_token_budget: int | None = None) -> Chat:
    """``daily_token_budget``: the per-user allowance, counted on the chat's own ledger (None: unbounded)."""
    catalog = FakeCatalog()
    catalog.put_workspace(Workspace(WS, "docs", OWNER, "hash-512", 512, shared_with=(READER,)))
    index = FakeVectorIndex()
    index.ensure_workspace(WS, dimensions=512)
    for doc_id, text in (("plimsk", PLIMSK), ("tollan", TOLLAN)):
        catalog.put_document(Document(id=doc_id, workspace_id=WS, name=doc_id, source=DocumentSource.TEXT))
        chunk = Chunk(WS, doc_id, 0, text, 0, len(text), title=doc_id, embedding=tuple(EMBEDDER.embed_query(text)))
        index.replace_document(WS, doc_id, [chunk])
    model = ScriptedChatModel(*replies)
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-512", "hash", "test", dimensions=512), lambda: EMBEDDER)
    models.chat_models.register(ModelInfo("scripted", "scripted", "test"), lambda: model)
    access = WorkspaceAccess(catalog)
    history, ledger = FakeChatHistory(), InMemoryUsageLedger()
    search = SearchService(index=index, catalog=catalog, models=models, access=access)
    budget = TokenBudget(ledger=ledger, daily_tokens=daily_token_budget)
    service = ChatService(history=history, search=search, models=models, access=access, usage=ledger, budget=budget)
    return Chat(service, model, history, ledger)
