"""The website source for ingestion: the REST body's crawl options -> ``WebsiteCrawler`` pages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from quarry.text.crawler import AddressGuard, CrawledPage, CrawlMode, CrawlOptions, WebsiteCrawler

__all__ = ["CrawlerPageSource"]


class CrawlerPageSource:
    """``allowed_hosts`` exempts exact hosts from the private-network refusal (tests, intranet opt-in)."""

    def __init__(self, *, allowed_hosts: Sequence[str] = (), time_budget: float = 300.0) -> None:
        self._guard = AddressGuard(allowed_hosts=list(allowed_hosts))
        self._time_budget = time_budget

    def crawl(self, options: dict[str, Any]) -> Iterator[CrawledPage]:
        crawl_options = CrawlOptions(
            mode=CrawlMode.SITEMAP if options.get("use_sitemap") else CrawlMode.FOLLOW_LINKS,
            max_pages=int(options.get("max_pages", 20)),
            max_depth=int(options.get("max_depth", 2)) if options.get("follow_links", True) else 0,
            allowed_content_types=frozenset(options.get("content_types") or CrawlOptions().allowed_content_types),
            time_budget=self._time_budget,
        )
        yield from WebsiteCrawler(crawl_options, guard=self._guard).crawl(str(options["url"]))
