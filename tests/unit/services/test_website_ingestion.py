"""WebsiteIngestion (crawl -> pages -> the document pipeline) on the fakes, with a site of fixed pages."""

from __future__ import annotations

import re

import pytest

from quarry.errors import UnreadableDocument
from quarry.models import Document, DocumentSource, DocumentStatus
from quarry.services.document_pipeline import DocumentDeleted
from quarry.services.documents import document_id_for
from tests.unit.services.ingestion_fixtures import OWNER, IngestionRig, Page, StaticSite, build_rig

OPTIONS = {"url": "https://example.org/", "max_pages": 5}
TIDES = Page("https://example.org/tides", b"Spring tides reach 4.2 metres at the harbour mouth.", title="Tides")
BIRDS = Page("https://example.org/birds", b"Terns nest on the breakwater every May.")
EMPTY = Page("https://example.org/empty", b"   ")


def _rig(*pages: Page) -> tuple[IngestionRig, StaticSite, Document]:
    site = StaticSite(list(pages))
    rig = build_rig(crawler=site)
    return rig, site, rig.documents.add_website(OWNER, rig.workspace.id, OPTIONS)


def _page(rig: IngestionRig, page: Page) -> Document | None:
    return rig.catalog.get_document(rig.workspace.id, document_id_for(rig.workspace.id, f"page:{page.url}"))


def test_each_page_becomes_a_processed_sub_document_of_the_site() -> None:
    rig, site, website = _rig(TIDES, BIRDS)

    crawled = rig.website.crawl(rig.workspace, website)

    assert site.options_seen == [OPTIONS]  # the options stored with the site
    assert (crawled.pages, crawled.chunks) == (2, 2)
    tides, birds = _page(rig, TIDES), _page(rig, BIRDS)
    assert tides is not None and birds is not None
    assert (tides.name, birds.name) == ("Tides", BIRDS.url)  # untitled pages are named by their address
    for page in (tides, birds):
        assert (page.source, page.parent_id, page.status, page.chunk_count) == (
            DocumentSource.WEBPAGE,
            website.id,
            DocumentStatus.PROCESSED,
            1,
        )
        assert rig.index.count(rig.workspace.id, document_id=page.id) == 1
    assert tides.metadata == {"url": TIDES.url}


def test_a_page_that_cannot_be_read_fails_alone_and_the_crawl_goes_on() -> None:
    rig, _, website = _rig(EMPTY, TIDES)

    crawled = rig.website.crawl(rig.workspace, website)

    assert (crawled.pages, crawled.chunks) == (1, 1)
    empty = _page(rig, EMPTY)
    assert empty is not None and empty.status is DocumentStatus.ERROR and "empty" in (empty.status_reason or "")


def test_a_crawl_that_indexes_no_page_fails() -> None:
    rig, _, website = _rig(EMPTY)

    with pytest.raises(UnreadableDocument, match=re.escape(f"{OPTIONS['url']}: no page could be crawled and parsed")):
        rig.website.crawl(rig.workspace, website)


def test_without_a_crawler_a_website_is_refused() -> None:
    rig = build_rig(crawler=None)
    website = rig.documents.add_website(OWNER, rig.workspace.id, OPTIONS)

    with pytest.raises(UnreadableDocument, match="website crawling is not enabled in this deployment"):
        rig.website.crawl(rig.workspace, website)


def test_a_site_deleted_during_the_crawl_stops_it_and_leaves_none_of_its_pages() -> None:
    rig, site, website = _rig(TIDES, BIRDS, Page("https://example.org/never", b"Never fetched."))
    # The purge lands between the first page and the second: it removes the first page (listed as the site's
    # child); the check after the second page finds the site gone, removes that page too and stops the crawl.
    site.after_page = lambda page: page is TIDES and rig.documents.purge(rig.workspace.id, website.id)

    with pytest.raises(DocumentDeleted, match=re.escape("https://example.org/ was deleted while it was being crawled")):
        rig.website.crawl(rig.workspace, website)

    assert site.served == 2
    assert _page(rig, TIDES) is None and _page(rig, BIRDS) is None
    assert rig.catalog.documents == {} and rig.index.count(rig.workspace.id) == 0


def test_a_page_is_parsed_by_its_content_type() -> None:
    broken_pdf = Page("https://example.org/a.pdf", b"not a pdf", content_type="application/pdf")
    plain = Page("https://example.org/notes", b"Terns nest in May.", content_type="text/plain; charset=utf-8")
    rig, _, website = _rig(broken_pdf, plain)

    rig.website.crawl(rig.workspace, website)

    failed, parsed = _page(rig, broken_pdf), _page(rig, plain)
    # Read as a PDF (its content type), so it fails as a damaged PDF, in words a reader understands.
    assert failed is not None and (failed.status_reason or "").startswith("This PDF is damaged or incomplete.")
    assert parsed is not None and parsed.status is DocumentStatus.PROCESSED
