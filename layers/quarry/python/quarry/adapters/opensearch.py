"""``ports.VectorIndex`` on Amazon OpenSearch Service (managed domain) or OpenSearch Serverless.

One index per workspace; dense ranking is a ``knn`` query (filters applied inside the graph search),
keyword ranking BM25 ``multi_match`` on title and text, both with the same filters (``quarry.filters``,
compiled to a ``bool`` query by ``opensearch_bodies.filter_clauses``). Fusion of the two is
the domain's job. Request bodies and response parsing are pure functions in
``opensearch_bodies``; this module only executes them.

``replace_document`` writes the new chunks first, tagged with a fresh *generation*, then
deletes the document's chunks of any other generation, so readers never see the document
vanish mid-replace:

* managed domain: deterministic ``_id`` = ``document:ordinal`` (re-runs overwrite), stale
  chunks removed with ``_delete_by_query``;
* Serverless: vector collections accept neither custom ids nor ``_delete_by_query``, so ids
  are server-generated and stale chunks are found with a search and removed with a bulk
  delete. Until that delete lands a search may see two copies of a chunk; ``parse_hits``
  keeps one.

``set_document_fields`` changes user metadata in place: ``_update_by_query`` with a painless script on a
managed domain; on Serverless (no ``_update_by_query``, no custom ids) the document's chunks are read
back, vectors included, and written again by the same write-new-then-delete-old replacement.

An index made before metadata filters has no mapping for the chunks' ``filterable`` copies (dynamic mapping
would guess their types: a number as ``long``, a date string as ``date``) and indexes ``metadata.fields``.
Before the first write to an index in a process (``ensure_workspace``, ``replace_document``,
``set_document_fields``) its mapping, read once anyway for the dimensions, is checked, and if it lacks
``opensearch_bodies.filter_mapping`` that is added with PUT ``<index>/_mapping``: at most once per index
per process. Reads never change a mapping (reader roles may not). A field already mapped another way
cannot be changed in place: that is a ``Conflict`` naming the field, raised on every write, never ignored.

A workspace without an index is ``NotFound`` to writes, counts and searches, as on every
``VectorIndex`` (only ``ensure_workspace`` creates one, so a replace racing a workspace deletion
cannot bring its index back); ``delete_document`` and ``drop_workspace`` find nothing to do there.
Chunks and query vectors are checked against the index's dimensions before anything is sent.

The client is injected or built lazily with SigV4 auth (service ``es`` or ``aoss``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from quarry import errors
from quarry.adapters import opensearch_bodies as bodies
from quarry.adapters.opensearch_bodies import IndexLayout
from quarry.filters import Filter
from quarry.metadata import USER_METADATA_KEY, validate_metadata
from quarry.models import Chunk
from quarry.ports import ScoredChunk

if TYPE_CHECKING:
    from quarry.settings import Settings

__all__ = ["OpenSearchIndex", "build_client"]

_BULK_CHUNKS = 200  # chunks per bulk request (a 1024-d vector is ~10 KB of JSON)
_ID_PAGE = 1000
_MAX_ID_PAGES = 100
# What OpenSearch answers to a mapping that would change a field already mapped another way.
_MAPPING_CONFLICTS = frozenset({"illegal_argument_exception", "mapper_exception", "mapper_parsing_exception"})


def build_client(endpoint: str, *, region: str, serverless: bool, timeout: float = 30.0) -> Any:
    """An ``OpenSearch`` client signing with the ambient AWS credentials (SigV4)."""
    import boto3
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise errors.UpstreamError("no AWS credentials found to sign OpenSearch requests")
    parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    if not parsed.hostname:
        raise errors.InvalidInput(f"invalid OpenSearch endpoint {endpoint!r}")
    return OpenSearch(
        hosts=[{"host": parsed.hostname, "port": parsed.port or 443}],
        http_auth=AWSV4SignerAuth(credentials, region, "aoss" if serverless else "es"),
        use_ssl=True,
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        timeout=timeout,
        max_retries=3,
        retry_on_timeout=True,
        retry_on_status=(429, 502, 503, 504),
        pool_maxsize=16,
    )


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """OpenSearch client exceptions -> ``quarry.errors``."""
    from opensearchpy import exceptions as os_errors

    try:
        yield
    except os_errors.ConnectionError as exc:
        raise errors.UpstreamError(f"OpenSearch unreachable during {action}: {exc}") from exc
    except (os_errors.AuthenticationException, os_errors.AuthorizationException) as exc:
        raise errors.UpstreamError(
            f"OpenSearch refused {action} ({exc.status_code}): check the role's IAM policy and, on Serverless, "
            "the collection's data access policy"
        ) from exc
    except os_errors.TransportError as exc:
        if exc.status_code == 429:
            raise errors.Throttled(f"OpenSearch is throttling {action}; try again shortly") from exc
        raise errors.UpstreamError(f"OpenSearch {action} failed ({exc.status_code}): {exc.error}") from exc


def _is_missing_index(exc: BaseException) -> bool:
    from opensearchpy import exceptions as os_errors

    return isinstance(exc, os_errors.NotFoundError)


def _error_reason(exc: Any) -> str:
    """The ``reason`` of an OpenSearch error answer, else its type."""
    info = exc.info if isinstance(exc.info, Mapping) else {}
    error = info.get("error")
    return str(error.get("reason") or exc.error) if isinstance(error, Mapping) else str(exc.error)


class OpenSearchIndex:
    """``ports.VectorIndex`` for one OpenSearch domain or Serverless collection."""

    def __init__(
        self,
        endpoint: str = "",
        *,
        region: str = "us-east-1",
        serverless: bool = False,
        prefix: str = "quarry",
        layout: IndexLayout | None = None,
        client: Any | None = None,
        refresh: bool = True,
        new_generation: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if client is None and not endpoint:
            raise errors.ModelUnavailable("no OpenSearch endpoint configured (QUARRY_OPENSEARCH_ENDPOINT)")
        self.layout = layout or IndexLayout.for_target(serverless=serverless)
        self._endpoint = endpoint
        self._region = region
        self._prefix = prefix
        self._client = client
        self._refresh = refresh and not self.layout.serverless  # Serverless refreshes on its own schedule
        self._new_generation = new_generation
        self._known: dict[str, int] = {}  # index -> dimensions, once seen
        self._filters_mapped: set[str] = set()  # indexes known to have bodies.filter_mapping
        self._filter_conflicts: dict[str, str] = {}  # index -> why filter_mapping cannot be added to it

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> OpenSearchIndex:
        return cls(
            settings.opensearch_endpoint,
            region=settings.aws_region,
            serverless=settings.opensearch_serverless,
            prefix=settings.table_prefix,
            client=client,
        )

    def _os(self) -> Any:
        if self._client is None:
            self._client = build_client(self._endpoint, region=self._region, serverless=self.layout.serverless)
        return self._client

    def _index(self, workspace_id: str) -> str:
        return bodies.index_name(self._prefix, workspace_id)

    # ------------------------------------------------------------------- workspaces

    def ensure_workspace(self, workspace_id: str, *, dimensions: int) -> None:
        index = self._index(workspace_id)
        existing = self._dimensions_of(index)
        if existing is None:
            self._create(index, dimensions)
            self._known[index] = dimensions
        elif existing != dimensions:
            raise errors.Conflict(
                f"workspace {workspace_id} is indexed with {existing}-dimensional vectors, not {dimensions}"
            )
        else:
            self._add_filter_mapping(index)

    def _dimensions_of(self, index: str) -> int | None:
        if index in self._known:
            return self._known[index]
        with _translated("reading the index mapping"):
            try:
                mapping = self._os().indices.get_mapping(index=index)
            except Exception as exc:
                if _is_missing_index(exc):
                    return None
                raise
        dimensions = bodies.mapping_dimensions(mapping, index)
        if dimensions is None:
            raise errors.Conflict(f"OpenSearch index {index} exists but has no knn_vector 'embedding' field")
        self._known[index] = dimensions
        if bodies.has_filter_mapping(mapping, index):
            self._filters_mapped.add(index)
        return dimensions

    def _existing_dimensions(self, index: str, workspace_id: str) -> int:
        dimensions = self._dimensions_of(index)
        if dimensions is None:
            raise errors.NotFound(f"workspace {workspace_id!r} has no index")
        return dimensions

    def _add_filter_mapping(self, index: str) -> None:
        """Give an existing index ``bodies.filter_mapping`` unless its mapping (read by ``_dimensions_of``)
        has it: chunks written without it would get ``filterable`` mapped by guess and filters would
        misbehave. At most one PUT per index per process, whether it succeeds or conflicts."""
        if index in self._filters_mapped:
            return
        if index in self._filter_conflicts:
            raise errors.Conflict(self._filter_conflicts[index])
        from opensearchpy import exceptions as os_errors

        with _translated("adding the metadata filter mapping"):
            try:
                self._os().indices.put_mapping(index=index, body=bodies.filter_mapping())
            except os_errors.TransportError as exc:
                if _is_missing_index(exc):
                    raise errors.NotFound(f"OpenSearch index {index} no longer exists") from exc
                if exc.error not in _MAPPING_CONFLICTS:
                    raise
                self._filter_conflicts[index] = (
                    f"OpenSearch index {index} was made before metadata filters and its mapping cannot take them "
                    f"({_error_reason(exc)}); create a new workspace and upload its documents there"
                )
                raise errors.Conflict(self._filter_conflicts[index]) from exc
        self._filters_mapped.add(index)

    def _create(self, index: str, dimensions: int) -> None:
        from opensearchpy import exceptions as os_errors

        body = bodies.index_body(dimensions, self.layout)
        with _translated("creating the index"):
            try:
                self._os().indices.create(index=index, body=body)
            except os_errors.RequestError as exc:
                if exc.error != "resource_already_exists_exception":  # lost a race: fine
                    raise
        self._filters_mapped.add(index)

    def drop_workspace(self, workspace_id: str) -> None:
        index = self._index(workspace_id)
        self._known.pop(index, None)
        self._filters_mapped.discard(index)
        self._filter_conflicts.pop(index, None)
        with _translated("deleting the index"):
            try:
                self._os().indices.delete(index=index)
            except Exception as exc:
                if not _is_missing_index(exc):
                    raise

    # ------------------------------------------------------------------- writing

    def replace_documents(self, workspace_id: str, documents: Mapping[str, Sequence[Chunk]]) -> None:
        """One document at a time: each replacement is already write-new-then-delete-old."""
        for document_id, chunks in documents.items():
            self.replace_document(workspace_id, document_id, chunks)

    def optimize(self, workspace_id: str) -> None:
        """Nothing to do: OpenSearch keeps its own statistics; new segments are searchable after refresh."""

    def replace_document(self, workspace_id: str, document_id: str, chunks: Sequence[Chunk]) -> None:
        """Checks every chunk first (a bad one changes nothing); a workspace without an index is ``NotFound``:
        the index is made by ``ensure_workspace`` only, so a dropped workspace is never brought back."""
        bodies.check_chunks(chunks, workspace_id=workspace_id, document_id=document_id)
        index = self._index(workspace_id)
        dimensions = self._existing_dimensions(index, workspace_id)
        for chunk in chunks:
            bodies.check_vector(chunk.embedding or (), dimensions, f"the embedding of chunk {chunk.id}")
        self._add_filter_mapping(index)
        generation = self._new_generation()
        for start in range(0, len(chunks), _BULK_CHUNKS):
            batch = chunks[start : start + _BULK_CHUNKS]
            self._bulk(bodies.bulk_index_actions(index, batch, generation=generation, layout=self.layout))
        self._delete_matching(index, bodies.document_query(document_id, keep_generation=generation))

    def delete_document(self, workspace_id: str, document_id: str) -> int:
        return self._delete_matching(self._index(workspace_id), bodies.document_query(document_id))

    def _bulk(self, actions: list[dict[str, Any]]) -> int:
        if not actions:
            return 0
        params = {"refresh": "wait_for"} if self._refresh else {}
        with _translated("bulk indexing"):
            response = self._os().bulk(body=actions, **params)
        failures = [
            item
            for entry in response.get("items", [])
            for op, item in entry.items()
            if item.get("error") and not (op == "delete" and item.get("status") == 404)
        ]
        if failures:
            reason = failures[0]["error"]
            detail = reason.get("reason", reason) if isinstance(reason, dict) else reason
            raise errors.UpstreamError(f"OpenSearch rejected {len(failures)} bulk operations: {detail}")
        return sum(1 for entry in response.get("items", []) for item in entry.values() if item.get("status") == 200)

    def _delete_matching(self, index: str, query: dict[str, Any]) -> int:
        if self.layout.serverless:
            return self._search_and_delete(index, query)
        with _translated("deleting stale chunks"):
            try:
                response = self._os().delete_by_query(
                    index=index, body={"query": query}, conflicts="proceed", refresh=self._refresh
                )
            except Exception as exc:
                if _is_missing_index(exc):
                    return 0
                raise
        return int(response.get("deleted", 0))

    def _search_and_delete(self, index: str, query: dict[str, Any]) -> int:
        deleted = 0
        ids = self._matching_ids(index, query)
        for start in range(0, len(ids), _ID_PAGE):
            deleted += self._bulk(bodies.bulk_delete_actions(index, ids[start : start + _ID_PAGE]))
        return deleted

    def _matching_ids(self, index: str, query: dict[str, Any]) -> list[str]:
        """Every matching ``_id``, paged with ``search_after`` (stable while deleting)."""
        ids: list[str] = []
        after: list[Any] | None = None
        for _ in range(_MAX_ID_PAGES):
            with _translated("listing stale chunks"):
                try:
                    body = bodies.id_page_query(query, size=_ID_PAGE, after=after)
                    response = self._os().search(index=index, body=body)
                except Exception as exc:
                    if _is_missing_index(exc):
                        return ids
                    raise
            hits = response.get("hits", {}).get("hits", [])
            ids.extend(bodies.hit_ids(response))
            if len(hits) < _ID_PAGE:
                return ids
            after = hits[-1].get("sort")
        raise errors.UpstreamError(f"OpenSearch: more than {_MAX_ID_PAGES * _ID_PAGE} chunks to delete in {index}")

    # ------------------------------------------------------------------- reading

    def count(self, workspace_id: str, *, document_id: str | None = None) -> int:
        with _translated("counting chunks"):
            try:
                response = self._os().count(index=self._index(workspace_id), body=bodies.count_query(document_id))
            except Exception as exc:
                if _is_missing_index(exc):
                    raise errors.NotFound(f"workspace {workspace_id!r} has no index") from exc
                raise
        return int(response.get("count", 0))

    def set_document_fields(self, workspace_id: str, document_id: str, fields: Mapping[str, Any]) -> int:
        """The document's chunks get ``fields`` as their user metadata; a workspace without an index has
        nothing to change (0). Searchable after the same refresh as the adapter's other writes."""
        checked = validate_metadata(fields, where="fields")
        index = self._index(workspace_id)
        if self.layout.serverless:
            return self._rewrite_fields(index, workspace_id, document_id, checked)
        if self._dimensions_of(index) is None:
            return 0
        self._add_filter_mapping(index)
        with _translated("updating metadata"):
            try:
                response = self._os().update_by_query(
                    index=index,
                    body=bodies.set_fields_query(document_id, checked),
                    conflicts="proceed",
                    refresh=self._refresh,
                )
            except Exception as exc:
                if _is_missing_index(exc):
                    return 0
                raise
        return int(response.get("updated", 0))

    def _rewrite_fields(self, index: str, workspace_id: str, document_id: str, fields: Mapping[str, Any]) -> int:
        if self._dimensions_of(index) is None:
            return 0
        chunks: dict[int, Chunk] = {}
        after: list[Any] | None = None
        for _ in range(_MAX_ID_PAGES):
            body = bodies.source_page_query(bodies.document_query(document_id), size=_ID_PAGE, after=after)
            response = self._search(workspace_id, body, "reading a document's chunks")
            hits = response.get("hits", {}).get("hits", [])
            for hit in hits:
                try:
                    chunk = bodies.source_chunk(hit.get("_source") or {}, workspace_id)
                except (KeyError, TypeError, ValueError) as exc:
                    raise errors.UpstreamError(f"OpenSearch hit {hit.get('_id')!r} is not a quarry chunk") from exc
                chunks.setdefault(chunk.ordinal, chunk)  # a stale copy of a replacement in flight: keep one
            if len(hits) < _ID_PAGE:
                break
            after = hits[-1].get("sort")
        else:
            raise errors.UpstreamError(f"OpenSearch: more than {_MAX_ID_PAGES * _ID_PAGE} chunks in {document_id}")
        if not chunks:
            return 0
        updated = [
            dataclasses.replace(chunk, metadata={**chunk.metadata, USER_METADATA_KEY: dict(fields)})
            for _, chunk in sorted(chunks.items())
        ]
        self.replace_document(workspace_id, document_id, updated)
        return len(updated)

    def dense(
        self, workspace_id: str, vector: Sequence[float], *, k: int, filters: Filter | None = None
    ) -> list[ScoredChunk]:
        body = bodies.dense_query(vector, k=k, filters=filters, layout=self.layout)
        dimensions = self._existing_dimensions(self._index(workspace_id), workspace_id)
        bodies.check_vector(vector, dimensions, "the query vector")
        response = self._search(workspace_id, body, "dense search")
        return bodies.parse_hits(response, workspace_id=workspace_id, space_type=self.layout.space_type)

    def keyword(self, workspace_id: str, query: str, *, k: int, filters: Filter | None = None) -> list[ScoredChunk]:
        bodies.check_k(k)
        bodies.filter_clauses(filters)
        if not query.strip():
            return []  # no terms, no matches (as for a query of stop words only)
        body = bodies.keyword_query(query, k=k, filters=filters)
        response = self._search(workspace_id, body, "keyword search")
        return bodies.parse_hits(response, workspace_id=workspace_id)

    def _search(self, workspace_id: str, body: dict[str, Any], action: str) -> Mapping[str, Any]:
        with _translated(action):
            try:
                response: Mapping[str, Any] = self._os().search(index=self._index(workspace_id), body=body)
            except Exception as exc:
                if _is_missing_index(exc):
                    raise errors.NotFound(f"workspace {workspace_id!r} has no index") from exc
                raise
        return response
