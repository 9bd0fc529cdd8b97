"""The website source for ingestion: the REST body's crawl options -> ``WebsiteCrawler`` pages."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.text.crawler import AddressGuard, CrawledPage, CrawlMode, CrawlOptions, Resolver, WebsiteCrawler

__all__ = ["CrawlerPageSource"]

log = logging.getLogger(__name__)


class CrawlerPageSource:
    """``allowed_hosts`` exempts exact hosts from the private-network refusal (tests, intranet opt-in).

    ``time_budget`` bounds a whole crawl, body reads included; ``resolver`` and ``clock`` are the
    crawler's own (``socket.getaddrinfo`` and ``time.monotonic`` unless given).
    """

    def __init__(
        self,
        *,
        allowed_hosts: Sequence[str] = (),
        time_budget: float = 300.0,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guard = AddressGuard(allowed_hosts=list(allowed_hosts), resolver=resolver)
        self._time_budget = time_budget
        self._clock = clock

    def crawl(self, options: dict[str, Any]) -> Iterator[CrawledPage]:
        """The crawl's pages; a crawl that yields none ends with ``UnreadableDocument`` saying why."""
        crawl_options = CrawlOptions(
            mode=CrawlMode.SITEMAP if options.get("use_sitemap") else CrawlMode.FOLLOW_LINKS,
            max_pages=int(options.get("max_pages", 20)),
            max_depth=int(options.get("max_depth", 2)) if options.get("follow_links", True) else 0,
            allowed_content_types=frozenset(options.get("content_types") or CrawlOptions().allowed_content_types),
            time_budget=self._time_budget,
        )
        url = str(options["url"])
        run = WebsiteCrawler(crawl_options, guard=self._guard, clock=self._clock).crawl(url)
        pages = 0
        for page in run:
            pages += 1
            yield page
        if run.stop_reason is not None:
            log.warning("crawl of %s stopped after %d page(s): %s", url, pages, run.stop_reason)
        if pages == 0:
            why = run.stop_reason or (run.skipped[0].reason if run.skipped else "no page found")
            raise UnreadableFile(f"{url}: no page crawled: {why}", kind=FailureKind.REFUSED)
