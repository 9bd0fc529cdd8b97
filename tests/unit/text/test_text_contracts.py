"""The text ports' adapters under their contract suites: the Hugging Face tokenizer, and the parser."""

from __future__ import annotations

import pytest

from quarry.text.parsing import UnstructuredParser
from quarry.text.tokens import HFTokenizer
from tests.contracts.document_parser_contract import MAX_BYTES, DocumentParserContract
from tests.contracts.tokenizer_contract import TokenizerContract


class TestHFTokenizer(TokenizerContract):
    @pytest.fixture
    def tokenizer(self) -> HFTokenizer:
        return HFTokenizer()


class TestUnstructuredParser(DocumentParserContract):
    @pytest.fixture
    def parser(self) -> UnstructuredParser:
        return UnstructuredParser(max_bytes=MAX_BYTES)
