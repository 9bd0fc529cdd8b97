"""The chat model's display name: the provider is not repeated in it, and another GGUF is named by its file."""

from __future__ import annotations

from pathlib import Path

from quarry.model_catalogue import QWEN_CODER, register_models
from quarry.services.models_registry import ModelRegistry
from quarry.settings import Settings


def test_the_packaged_model_is_named_once_with_its_provider_apart(tmp_path: Path) -> None:
    [info] = register_models(Settings(data_dir=tmp_path), ModelRegistry()).chat_models.infos()

    assert info == QWEN_CODER
    assert info.provider == "llama.cpp" and "llama.cpp" not in info.name  # the UI shows "name (provider)"


def test_another_gguf_is_named_by_its_file_under_the_same_id(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_model_path=str(tmp_path / "Llama-3.2-1B-Instruct-Q4_K_M.gguf"))

    [info] = register_models(settings, ModelRegistry()).chat_models.infos()

    assert (info.id, info.name, info.provider) == (QWEN_CODER.id, "Llama-3.2-1B-Instruct-Q4_K_M", "llama.cpp")
