"""Greedy decoding of many prompts at once on one llama.cpp model: continuous batching over a shared prefix.

Why: writing one token of a small model on a CPU is bound by memory bandwidth (every token reads all the
weights), so decoding eight sequences in one ``llama_decode`` costs little more than decoding one. On this
project's 2-CPU machine, eight summary prompts at a time take 0.34 s per document against 0.75 s one after
another (``docs/benchmarks.md``, summaries).

How:

* **One context, ``sequences`` slots, one unified KV cache.** The prompts' common token prefix (a job's
  instructions and worked examples) is evaluated once into a *store* sequence, and every slot starts
  from it: the cells are shared, not copied (``llama_memory_seq_cp``). ``prefixes`` stores keep the
  latest prefixes evaluated between calls (least recently used overwritten first), so work that
  alternates between prompts (the summary map: read a batch, then check its points) evaluates each
  prefix once, and a call evaluates only the part of its prefix no store holds.
* **Continuous batching.** Each ``llama_decode`` carries the next token of every slot still writing and
  the rest of the prompt of each request that takes a free slot. A slot whose answer ends (an
  end-of-generation token, or ``max_tokens``) frees its cells and takes the next request at once.
* **Admission by KV cells.** A request takes a slot only while the cells every admitted request may
  still need (its own prompt tokens plus ``max_tokens``) fit the context, so a decode never runs out
  of room.
* **Greedy** (the most likely token): the summary map wants repeatable answers, and sampling at a
  temperature would need one sampler per slot. Batches change float rounding, so an answer may differ
  from the same prompt decoded alone in rare near-ties; it never depends on the order of requests
  within a slot's own sequence.

The model stays owned by the caller (``adapters.llamacpp``); this owns its context and batch, freed by
``close``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BatchDecoder", "PromptTooLong", "common_prefix"]


class PromptTooLong(ValueError):
    """A prompt whose tokens and answer cannot fit the decoder's context or one decode."""


def common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """The number of leading tokens every prompt shares, leaving each at least one token of its own (the
    logits of a prompt's last token start its answer)."""
    if not prompts:
        return 0
    shortest = min(len(p) for p in prompts)
    first = prompts[0]
    n = 0
    while n < shortest - 1 and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


@dataclass
class _Slot:
    seq: int
    request: int = -1
    pos: int = 0
    reserved: int = 0
    next_token: int | None = None
    logits_at: int = -1
    out: list[int] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.request >= 0


class BatchDecoder:
    """Greedy completions of token prompts, ``sequences`` at a time, on the llama.cpp model ``model``
    (a ``llama_model*``). Not thread-safe: the caller serialises calls (as llama.cpp contexts require)."""

    def __init__(
        self, model: Any, *, context_tokens: int, batch_tokens: int, sequences: int, threads: int, prefixes: int = 3
    ) -> None:
        import llama_cpp.llama_cpp as native

        if sequences < 1 or prefixes < 1 or batch_tokens < sequences or context_tokens < batch_tokens:
            raise ValueError("need 1 <= sequences <= batch_tokens <= context_tokens and 1 <= prefixes")
        self._native = native
        self._model = model
        self._vocab = native.llama_model_get_vocab(model)
        self._n_vocab = int(native.llama_vocab_n_tokens(self._vocab))
        self.context_tokens = context_tokens
        self.batch_tokens = batch_tokens
        self.sequences = sequences
        params = native.llama_context_default_params()
        params.n_ctx = context_tokens
        params.n_batch = batch_tokens
        params.n_ubatch = min(batch_tokens, 512)
        params.n_seq_max = sequences + prefixes
        params.kv_unified = True  # one cache: the shared prefix's cells serve every sequence
        params.n_threads = threads
        params.n_threads_batch = threads
        params.flash_attn_type = native.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as llama-cpp-python's own context
        params.no_perf = True
        self._ctx = native.llama_init_from_model(model, params)
        if not self._ctx:
            raise RuntimeError("llama.cpp could not create a batch context")
        self._memory = native.llama_get_memory(self._ctx)
        self._batch = native.llama_batch_init(batch_tokens, 0, sequences + prefixes)
        #: The store sequences (ids after the slots') and the prefix each holds at positions 0..len-1,
        #: least recently used first.
        self._stores: list[tuple[int, list[int]]] = [(sequences + n, []) for n in range(prefixes)]

    def close(self) -> None:
        if self._ctx:
            self._native.llama_batch_free(self._batch)
            self._native.llama_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:  # the context holds the KV cache (tens of MB): free it with the decoder
        with contextlib.suppress(Exception):  # interpreter shutdown: the library may be gone already
            self.close()

    # ------------------------------------------------------------------ public

    def complete(self, prompts: Sequence[Sequence[int]], *, max_tokens: int) -> list[list[int]]:
        """The answer tokens of each prompt, in order (the end-of-generation token left out)."""
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if not prompts:
            return []
        prefix = common_prefix(prompts)
        self._check(prompts, prefix, max_tokens)
        self._share_prefix(list(prompts[0][:prefix]))
        answers: list[list[int]] = [[] for _ in prompts]
        slots = [_Slot(seq) for seq in range(self.sequences)]
        waiting = deque(range(len(prompts)))
        while waiting or any(s.busy for s in slots):
            self._clear_batch()
            for slot in slots:
                if slot.busy and slot.next_token is not None:
                    slot.logits_at = self._add(slot.next_token, slot.pos, (slot.seq,), logits=True)
                    slot.pos += 1
            self._admit(slots, waiting, prompts, prefix, max_tokens)
            self._decode()
            for slot in slots:
                if slot.busy and slot.logits_at >= 0:
                    self._step(slot, max_tokens, answers, prefix)
        return answers

    def _check(self, prompts: Sequence[Sequence[int]], prefix: int, max_tokens: int) -> None:
        for n, prompt in enumerate(prompts):
            own = len(prompt) - prefix
            if not prompt:
                raise ValueError(f"prompt {n} has no token")
            if own + self.sequences > self.batch_tokens or self._held(prefix) + own + max_tokens > self.context_tokens:
                raise PromptTooLong(
                    f"prompt {n}: {len(prompt)} tokens and {max_tokens} to write do not fit "
                    f"{self.context_tokens} tokens of context"
                )

    def _admit(
        self, slots: list[_Slot], waiting: deque[int], prompts: Sequence[Sequence[int]], prefix: int, max_tokens: int
    ) -> None:
        """Give free slots the next waiting requests while their prompts fit this decode and the KV cells
        every admitted request may still need fit the context."""
        reserved = self._held(prefix) + sum(s.reserved for s in slots if s.busy)
        for slot in slots:
            if slot.busy or not waiting:
                continue
            request = waiting[0]
            own = prompts[request][prefix:]
            need = len(own) + max_tokens
            if reserved + need > self.context_tokens or self._batch.n_tokens + len(own) > self.batch_tokens:
                return  # no room this step: the request waits for a slot to finish
            waiting.popleft()
            reserved += need
            slot.request, slot.reserved, slot.out = request, need, []
            for offset, token in enumerate(own):
                last = offset == len(own) - 1
                at = self._add(token, prefix + offset, (slot.seq,), logits=last)
                if last:
                    slot.logits_at = at
            slot.pos = len(prompts[request])

    # ------------------------------------------------------------------ steps

    def _step(self, slot: _Slot, max_tokens: int, answers: list[list[int]], prefix: int) -> None:
        pointer = self._native.llama_get_logits_ith(self._ctx, slot.logits_at)
        slot.logits_at = -1
        token = int(np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).argmax())
        ended = bool(self._native.llama_vocab_is_eog(self._vocab, token))
        if not ended:
            slot.out.append(token)
        if ended or len(slot.out) >= max_tokens:
            answers[slot.request] = slot.out
            self._native.llama_memory_seq_rm(self._memory, slot.seq, prefix, -1)
            slot.request, slot.reserved, slot.next_token, slot.out = -1, 0, None, []
        else:
            slot.next_token = token

    def _held(self, prefix: int) -> int:
        """KV cells the stores hold once this call's prefix is in one (at most: the least recently used
        store, the one a new prefix overwrites, counted as this one)."""
        return prefix + sum(len(tokens) for _, tokens in self._stores[1:])

    def _share_prefix(self, prefix: list[int]) -> None:
        """Every slot empty and starting from ``prefix``: from the store that holds most of it (the rest
        evaluated into that store), else from the least recently used store, overwritten."""
        for seq in range(self.sequences):
            self._native.llama_memory_seq_rm(self._memory, seq, -1, -1)
        best, kept = 0, 0
        for n, (_, tokens) in enumerate(self._stores):
            held = common_prefix([[*tokens, -1], [*prefix, -2]]) if tokens and prefix else 0
            if held > kept:
                best, kept = n, held
        store, _ = self._stores.pop(best)
        self._stores.append((store, prefix))  # most recently used last
        self._native.llama_memory_seq_rm(self._memory, store, kept, -1)
        for start in range(kept, len(prefix), self.batch_tokens):
            self._clear_batch()
            for pos in range(start, min(len(prefix), start + self.batch_tokens)):
                self._add(prefix[pos], pos, (store,), logits=False)
            self._decode()
        if prefix:
            for seq in range(self.sequences):
                self._native.llama_memory_seq_cp(self._memory, store, seq, 0, len(prefix))

    def _clear_batch(self) -> None:
        self._batch.n_tokens = 0

    def _add(self, token: int, pos: int, seqs: Sequence[int], *, logits: bool) -> int:
        batch, at = self._batch, self._batch.n_tokens
        batch.token[at] = token
        batch.pos[at] = pos
        batch.n_seq_id[at] = len(seqs)
        for k, seq in enumerate(seqs):
            batch.seq_id[at][k] = seq
        batch.logits[at] = 1 if logits else 0
        batch.n_tokens = at + 1
        return at

    def _decode(self) -> None:
        if self._batch.n_tokens == 0:
            return
        status = self._native.llama_decode(self._ctx, self._batch)
        if status != 0:
            # The stores may hold part of this batch: evaluate every prefix afresh next time.
            self._stores = [(store, []) for store, _ in self._stores]
            raise RuntimeError(f"llama_decode failed with status {status}")
