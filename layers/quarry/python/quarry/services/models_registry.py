"""Which models this deployment offers, by name. Built by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from quarry.errors import InvalidInput
from quarry.ports import ChatModel, Embedder, Reranker

__all__ = ["ModelInfo", "ModelRegistry", "Provider"]

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    name: str
    provider: str
    dimensions: int | None = None


class Provider(Generic[M]):
    """Named factories; each model is built on first use and then shared."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._factories: dict[str, tuple[ModelInfo, Callable[[], M]]] = {}
        self._built: dict[str, M] = {}
        self.default: str | None = None

    def register(self, info: ModelInfo, factory: Callable[[], M], *, default: bool = False) -> None:
        self._factories[info.id] = (info, factory)
        if default or self.default is None:
            self.default = info.id

    def get(self, name: str | None = None) -> M:
        key = name or self.default
        if key is None or key not in self._factories:
            known = ", ".join(sorted(self._factories)) or "none"
            raise InvalidInput(f"unknown {self._kind} model {name!r} (available: {known})")
        if key not in self._built:
            self._built[key] = self._factories[key][1]()
        return self._built[key]

    def info(self, name: str | None = None) -> ModelInfo:
        key = name or self.default
        if key is None or key not in self._factories:
            raise InvalidInput(f"unknown {self._kind} model {name!r}")
        return self._factories[key][0]

    def infos(self) -> list[ModelInfo]:
        return [info for info, _ in self._factories.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._factories


@dataclass
class ModelRegistry:
    embedders: Provider[Embedder] = field(default_factory=lambda: Provider("embedding"))
    rerankers: Provider[Reranker] = field(default_factory=lambda: Provider("reranker"))
    chat_models: Provider[ChatModel] = field(default_factory=lambda: Provider("chat"))

    def describe(self) -> dict[str, list[dict[str, object]]]:
        def rows(p: Provider[object]) -> list[dict[str, object]]:
            return [
                {
                    "id": i.id,
                    "name": i.name,
                    "provider": i.provider,
                    "dimensions": i.dimensions,
                    "default": i.id == p.default,
                }
                for i in p.infos()
            ]

        return {"llms": rows(self.chat_models), "embeddings": rows(self.embedders), "rerankers": rows(self.rerankers)}  # type: ignore[arg-type]
