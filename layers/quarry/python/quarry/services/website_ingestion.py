"""Website ingestion: crawl a site, each page a sub-document of it, each through the document pipeline.

Every page carries the crawl's user metadata (``quarry.metadata``), as the crawl's document holds it when the
crawl runs. A page that cannot be parsed ends in ``error`` on its own and the crawl goes on; a crawl that indexes no
page at all fails. A site deleted while it is being crawled stops the crawl after the page in hand, and that
page's record and chunks go too (``_stop_if_site_deleted``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.errors import QuarryError
from quarry.metadata import USER_METADATA_KEY, user_metadata
from quarry.models import Document, DocumentSource, DocumentStatus, Workspace
from quarry.ports import BlobStore, Catalog
from quarry.services.document_pipeline import DocumentDeleted, DocumentPipeline
from quarry.services.documents import document_id_for
from quarry.services.failure_reasons import explain_failure
from quarry.services.status import DocumentStatusPublisher

__all__ = ["CrawlCount", "CrawledPage", "PageSource", "WebsiteIngestion"]

log = logging.getLogger(__name__)


class CrawledPage(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def title(self) -> str: ...


class PageSource(Protocol):
    """A website crawl (``quarry.text.crawler``), as the ingestion step needs it."""

    def crawl(self, options: dict[str, Any]) -> Iterable[CrawledPage]: ...


@dataclass(frozen=True, slots=True)
class CrawlCount:
    pages: int
    chunks: int


class WebsiteIngestion:
    def __init__(
        self,
        *,
        catalog: Catalog,
        blobs: BlobStore,
        pipeline: DocumentPipeline,
        status: DocumentStatusPublisher,
        crawler: PageSource | None = None,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._pipeline = pipeline
        self._status = status
        self._crawler = crawler

    def crawl(self, workspace: Workspace, site: Document) -> CrawlCount:
        """Crawl with the options stored for ``site``; each page is indexed as a sub-document of it."""
        if self._crawler is None:
            raise UnreadableFile(
                f"{site.name}: website crawling is not enabled in this deployment", kind=FailureKind.REFUSED
            )
        assert site.blob_key is not None
        options = json.loads(self._blobs.get(site.blob_key))
        fields = {USER_METADATA_KEY: user_metadata(site.metadata)} if USER_METADATA_KEY in site.metadata else {}
        pages = chunks = 0
        for page in self._crawler.crawl(options):
            page_doc = Document(
                id=document_id_for(workspace.id, f"page:{page.url}"),
                workspace_id=workspace.id,
                name=page.title or page.url,
                source=DocumentSource.WEBPAGE,
                parent_id=site.id,
                content_type=page.content_type,
                size_bytes=len(page.data),
                metadata={"url": page.url, **fields},
            )
            self._catalog.put_document(page_doc)
            try:
                count = self._pipeline.ingest_bytes(
                    workspace, page_doc, page.data, filename=_page_filename(page), content_type=page.content_type
                )
                self._status.set(workspace.id, page_doc.id, DocumentStatus.PROCESSED, chunk_count=count)
                pages += 1
                chunks += count
            except DocumentDeleted:
                raise
            except QuarryError as exc:  # a sentence for the reader (``failure_reasons``), the detail in the log
                explained = explain_failure(exc, filename=page_doc.name)
                log.info("page %s failed (%s): %s", page.url, explained.kind.value, explained.detail)
                self._status.set(workspace.id, page_doc.id, DocumentStatus.ERROR, reason=explained.reason)
            self._stop_if_site_deleted(site, page_doc)
        if pages == 0:
            raise UnreadableFile(f"{site.name}: no page could be crawled and parsed", kind=FailureKind.REFUSED)
        return CrawlCount(pages=pages, chunks=chunks)

    def _stop_if_site_deleted(self, site: Document, page: Document) -> None:
        """After each page: if the crawl's site is gone, the page just written goes too, and the crawl stops.

        The purge deletes the site's record before listing its pages, so a page written before a check
        that still finds the site is listed and purged; one written after it is removed here.
        """
        if self._catalog.existing_document_ids(site.workspace_id, [site.id]):
            return
        self._catalog.delete_document(page.workspace_id, page.id)
        self._pipeline.discard_deleted(page.workspace_id, [page.id])
        raise DocumentDeleted(f"{site.name} was deleted while it was being crawled")


def _page_filename(page: CrawledPage) -> str:
    ext = {"application/pdf": ".pdf", "text/plain": ".txt"}.get(page.content_type.split(";")[0], ".html")
    return f"page{ext}"
