"""WebsiteCrawler against real HTTP servers on 127.0.0.1 (threads), with every request recorded.

Only loopback is ever contacted: the SSRF cases (10.0.0.1, 169.254.169.254...) are refused
before any connection, which the ``network_watch`` fixture checks at the socket level.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from quarry.errors import InvalidInput
from quarry.text.crawler import (
    AddressGuard,
    CrawlMode,
    CrawlOptions,
    CrawlRun,
    RefusedUrl,
    WebsiteCrawler,
    normalise_url,
)

pytestmark = pytest.mark.integration

Route = tuple[int, dict[str, str], bytes] | Callable[[], tuple[int, dict[str, str], bytes]]


@dataclass
class Site:
    """A tiny web site on 127.0.0.1; ``requests`` lists (path, user agent) in arrival order."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def html(self, path: str, body: str, title: str = "") -> None:
        page = f"<html><head><title>{title}</title></head><body>{body}</body></html>".encode()
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8"}, page)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": location}, b"")


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("User-Agent", "")))
            route = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            status, headers, body = route() if callable(route) else route
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the crawler hung up (timeout, size limit): expected

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[Site], Site]]:
    servers: list[ThreadingHTTPServer] = []

    def start(site: Site) -> Site:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
        server.daemon_threads = True
        site.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return site

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def network_watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse (and record) any connection beyond loopback and any DNS query for a real name."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if not (str(host).startswith("127.") or host == "::1"):
            attempts.append(address)
            raise OSError(f"test network: {address} is off limits")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name != "localhost" and not all(c.isdigit() or c in ".:abcdef" for c in name.lower()):
            attempts.append(f"DNS {name}")
            raise socket.gaierror(socket.EAI_NONAME, "test network: no DNS")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == [], f"the crawler reached beyond loopback: {attempts}"


def guard_for(*sites: Site) -> AddressGuard:
    return AddressGuard(allowed_hosts=[f"127.0.0.1:{site.port}" for site in sites])


def crawl(site: Site, **options: Any) -> tuple[CrawlRun, list[Any]]:
    crawler = WebsiteCrawler(CrawlOptions(**options), guard=guard_for(site))
    run = crawler.crawl(site.base + "/")
    return run, list(run)


def reasons(run: CrawlRun) -> dict[str, str]:
    return {skip.url: skip.reason for skip in run.skipped}


@pytest.fixture
def site(serve: Callable[[Site], Site]) -> Site:
    """Home links to pages, a PDF, an image, robots-disallowed and off-site URLs, and a chain of depth 3."""
    s = serve(Site())
    s.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    s.html(
        "/",
        '<a href="/a">A</a> <a href="b.html#top">B</a> <a href="/a#again">A again</a>'
        ' <a href="/private/secret">secret</a> <a href="/doc.pdf">pdf</a> <a href="/pic.png">png</a>'
        ' <a href="http://other.example/page">elsewhere</a> <a href="mailto:x@example.com">mail</a>'
        ' <a href="/missing">missing</a>',
        title="Home  Page",
    )
    s.html("/a", '<a href="/a/deeper">deeper</a>', title="A")
    s.html("/a/deeper", '<a href="/a/deeper/deepest">deepest</a>', title="Deeper")
    s.html("/a/deeper/deepest", "bottom", title="Deepest")
    s.html("/b.html", "plain page B", title="B")
    s.html("/private/secret", "do not crawl", title="Secret")
    s.routes["/doc.pdf"] = (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 fake but bytes are bytes")
    s.routes["/pic.png"] = (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n")
    return s


# --------------------------------------------------------------------------- following links


def test_follows_links_within_the_limits(site: Site) -> None:
    run, pages = crawl(site, max_depth=2)
    by_url = {page.url: page for page in pages}
    base = site.base
    assert set(by_url) == {f"{base}/", f"{base}/a", f"{base}/b.html", f"{base}/doc.pdf", f"{base}/a/deeper"}
    assert pages[0].url == f"{base}/"
    assert (pages[0].title, pages[0].depth, pages[0].content_type) == ("Home Page", 0, "text/html")
    assert by_url[f"{base}/a/deeper"].depth == 2
    assert by_url[f"{base}/doc.pdf"].data == b"%PDF-1.4 fake but bytes are bytes"
    assert by_url[f"{base}/doc.pdf"].title == "doc.pdf"
    assert b"plain page B" in by_url[f"{base}/b.html"].data
    skipped = reasons(run)
    assert skipped[f"{base}/private/secret"] == "disallowed by robots.txt"
    assert skipped[f"{base}/pic.png"] == "content type image/png is not allowed"
    assert skipped["http://other.example/page"] == "outside the start site"
    assert skipped[f"{base}/a/deeper/deepest"] == "deeper than max_depth 2"
    assert skipped[f"{base}/missing"] == "HTTP 404"
    assert run.stop_reason is None
    # robots.txt first, each page once, never the disallowed or too-deep ones.
    assert site.paths[0] == "/robots.txt"
    assert sorted(site.paths) == sorted(set(site.paths))
    assert "/private/secret" not in site.paths
    assert "/a/deeper/deepest" not in site.paths
    assert {agent for _, agent in site.requests} == {"QuarryBot"}


def test_max_depth_zero_fetches_only_the_start_page(site: Site) -> None:
    run, pages = crawl(site, max_depth=0)
    assert [page.url for page in pages] == [f"{site.base}/"]
    assert reasons(run)[f"{site.base}/a"] == "deeper than max_depth 0"


def test_max_pages_stops_the_crawl(site: Site) -> None:
    run, pages = crawl(site, max_pages=2)
    assert len(pages) == 2
    assert run.stop_reason == "max_pages 2 reached"
    assert reasons(run)[f"{site.base}/doc.pdf"] == "max_pages 2 reached"
    assert "/doc.pdf" not in site.paths


def test_pages_are_fetched_lazily(site: Site) -> None:
    run = WebsiteCrawler(CrawlOptions(), guard=guard_for(site)).crawl(site.base + "/")
    assert site.requests == []
    first = next(iter(run))
    assert first.url == f"{site.base}/"
    assert site.paths == ["/robots.txt", "/"]


def test_allowed_content_types_are_configurable(site: Site) -> None:
    run, pages = crawl(site, allowed_content_types=frozenset({"text/html"}))
    assert f"{site.base}/doc.pdf" not in {page.url for page in pages}
    assert reasons(run)[f"{site.base}/doc.pdf"] == "content type application/pdf is not allowed"


def test_pages_over_the_byte_limit_are_skipped(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.html("/", '<a href="/big">big</a> <a href="/small">small</a>')
    s.html("/big", "x" * 50_000)
    s.html("/small", "fine")
    run, pages = crawl(s, max_bytes_per_page=10_000)
    assert [page.url for page in pages] == [f"{s.base}/", f"{s.base}/small"]
    assert reasons(run)[f"{s.base}/big"].startswith("larger than 10000 bytes")


def test_same_domain_only_can_be_switched_off_but_addresses_are_still_checked(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.html("/", f'<a href="http://localhost:{s.port}/other">same server, other name</a>')
    run, pages = crawl(s, same_domain_only=False)
    assert [page.url for page in pages] == [f"{s.base}/"]
    assert reasons(run)[f"http://localhost:{s.port}/other"] == "localhost resolves to 127.0.0.1, a loopback address"
    assert "/other" not in s.paths


# --------------------------------------------------------------------------- redirects


def test_every_redirect_hop_is_checked(serve: Callable[[Site], Site]) -> None:
    inner = serve(Site())
    inner.html("/", "internal admin page")
    s = serve(Site())
    s.html(
        "/",
        '<a href="/to-metadata">m</a> <a href="/to-other-port">p</a> <a href="/to-private">q</a>'
        ' <a href="/hop1">chain</a> <a href="/to-b">b</a> <a href="/loop">loop</a>',
    )
    s.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
    s.redirect("/to-other-port", f"http://127.0.0.1:{inner.port}/", status=307)
    s.redirect("/to-private", "http://10.0.0.1/admin", status=301)
    s.redirect("/hop1", "/hop2")
    s.redirect("/hop2", "http://169.254.169.254/")
    s.redirect("/to-b", "/b", status=308)
    s.redirect("/loop", "/loop")
    s.html("/b", "landing", title="B")
    run, pages = crawl(s, same_domain_only=False, max_redirects=3)
    assert [page.url for page in pages] == [f"{s.base}/", f"{s.base}/b"]
    assert pages[1].title == "B"
    skipped = reasons(run)
    metadata = "169.254.169.254 resolves to 169.254.169.254, a link-local address"
    assert skipped[f"{s.base}/to-metadata"] == f"redirected to http://169.254.169.254/latest/meta-data/: {metadata}"
    assert skipped[f"{s.base}/to-other-port"] == (
        f"redirected to http://127.0.0.1:{inner.port}/: 127.0.0.1 resolves to 127.0.0.1, a loopback address"
    )
    assert skipped[f"{s.base}/to-private"] == (
        "redirected to http://10.0.0.1/admin: 10.0.0.1 resolves to 10.0.0.1, a private address"
    )
    assert skipped[f"{s.base}/hop1"] == f"redirected to http://169.254.169.254/: {metadata}"
    assert skipped[f"{s.base}/loop"] == "more than 3 redirects"
    assert inner.requests == [], "the internal server on another port must never be reached"


def test_redirects_off_site_are_refused_before_any_lookup(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.html("/", '<a href="/away">away</a>')
    s.redirect("/away", "http://elsewhere.example/")
    run, pages = crawl(s)
    assert len(pages) == 1
    assert reasons(run)[f"{s.base}/away"] == "redirected to http://elsewhere.example/: outside the start site"


def test_redirect_to_an_already_crawled_page_is_not_yielded_twice(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.html("/", '<a href="/alias">alias</a>')
    s.redirect("/alias", "/")
    run, pages = crawl(s)
    assert [page.url for page in pages] == [f"{s.base}/"]
    assert reasons(run)[f"{s.base}/alias"] == f"redirects to {s.base}/, already crawled"


def test_redirect_into_robots_disallowed_path_is_refused(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.routes["/robots.txt"] = (200, {}, b"User-agent: QuarryBot\nDisallow: /admin\n")
    s.html("/", '<a href="/go">go</a>')
    s.redirect("/go", "/admin/panel")
    run, _ = crawl(s)
    assert reasons(run)[f"{s.base}/go"] == f"redirected to {s.base}/admin/panel: disallowed by robots.txt"
    assert "/admin/panel" not in s.paths


# --------------------------------------------------------------------------- robots.txt


def test_robots_rules_for_our_agent_apply(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.routes["/robots.txt"] = (200, {}, b"User-agent: OtherBot\nDisallow: /\n\nUser-agent: QuarryBot\nDisallow: /x\n")
    s.html("/", '<a href="/x">x</a> <a href="/y">y</a>')
    s.html("/y", "y")
    run, pages = crawl(s)
    assert [page.url for page in pages] == [f"{s.base}/", f"{s.base}/y"]
    assert reasons(run)[f"{s.base}/x"] == "disallowed by robots.txt"


def test_robots_disallowing_everything_stops_everything(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.routes["/robots.txt"] = (200, {}, b"User-agent: *\nDisallow: /\n")
    s.html("/", "home")
    run, pages = crawl(s)
    assert pages == []
    assert reasons(run) == {f"{s.base}/": "disallowed by robots.txt"}
    assert s.paths == ["/robots.txt"]


@pytest.mark.parametrize(("status", "crawled"), [(404, True), (410, True), (403, False), (500, False)])
def test_robots_status_codes(serve: Callable[[Site], Site], status: int, crawled: bool) -> None:
    s = serve(Site())
    s.routes["/robots.txt"] = (status, {}, b"")
    s.html("/", "home")
    run, pages = crawl(s)
    assert bool(pages) is crawled
    if not crawled:
        assert reasons(run) == {f"{s.base}/": f"robots.txt unavailable (HTTP {status})"}


# --------------------------------------------------------------------------- time


def test_slow_pages_time_out(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())

    def slow() -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.0)
        return 200, {"Content-Type": "text/html"}, b"late"

    s.html("/", '<a href="/slow">slow</a> <a href="/fast">fast</a>')
    s.routes["/slow"] = slow
    s.html("/fast", "quick")
    run, pages = crawl(s, request_timeout=0.3)
    assert [page.url for page in pages] == [f"{s.base}/", f"{s.base}/fast"]
    assert reasons(run)[f"{s.base}/slow"] == "timed out after 0.3s"


def test_total_time_budget(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())

    def page(n: int) -> Callable[[], tuple[int, dict[str, str], bytes]]:
        def respond() -> tuple[int, dict[str, str], bytes]:
            time.sleep(0.25)
            return 200, {"Content-Type": "text/html"}, f'<a href="/p{n + 1}">next</a>'.encode()

        return respond

    s.html("/", '<a href="/p1">1</a>')
    for n in range(1, 10):
        s.routes[f"/p{n}"] = page(n)
    begin = time.monotonic()
    run, pages = crawl(s, time_budget=0.8, max_depth=20)
    assert time.monotonic() - begin < 2.0
    assert 1 <= len(pages) < 5
    assert run.stop_reason == "time budget exhausted"
    assert any(reason == "time budget exhausted" for reason in reasons(run).values())


# --------------------------------------------------------------------------- sitemap


def test_sitemap_mode(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.routes["/robots.txt"] = (
        200,
        {},
        f"User-agent: *\nDisallow: /hidden\nSitemap: {s.base}/sitemap_index.xml\n".encode(),
    )
    s.routes["/sitemap_index.xml"] = (
        200,
        {"Content-Type": "application/xml"},
        f'<?xml version="1.0"?><sitemapindex><sitemap><loc>{s.base}/pages.xml</loc></sitemap></sitemapindex>'.encode(),
    )
    urls = "".join(f"<url><loc>{s.base}{path}</loc></url>" for path in ["/one", "/two", "/hidden", "/one"])
    s.routes["/pages.xml"] = (200, {"Content-Type": "text/xml"}, f"<urlset>{urls}</urlset>".encode())
    s.html("/one", '<a href="/linked">not followed in sitemap mode</a>', title="One")
    s.html("/two", "two", title="Two")
    run, pages = crawl(s, mode=CrawlMode.SITEMAP)
    assert [(page.url, page.title) for page in pages] == [(f"{s.base}/one", "One"), (f"{s.base}/two", "Two")]
    assert reasons(run) == {f"{s.base}/hidden": "disallowed by robots.txt"}
    assert "/linked" not in s.paths


def test_sitemap_mode_defaults_to_sitemap_xml(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    s.routes["/sitemap.xml"] = (200, {}, f"<urlset><url><loc>{s.base}/only</loc></url></urlset>".encode())
    s.html("/only", "only page")
    _, pages = crawl(s, mode=CrawlMode.SITEMAP)
    assert [page.url for page in pages] == [f"{s.base}/only"]


def test_sitemap_missing_is_reported(serve: Callable[[Site], Site]) -> None:
    s = serve(Site())
    run, pages = crawl(s, mode=CrawlMode.SITEMAP)
    assert pages == []
    assert reasons(run) == {f"{s.base}/sitemap.xml": "sitemap: HTTP 404"}


# --------------------------------------------------------------------------- address policy


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1 resolves to 10.0.0.1, a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 resolves to 169.254.169.254, a link-local address",
        ),
        ("http://192.168.1.1:8080/", "192.168.1.1 resolves to 192.168.1.1, a private address"),
        ("http://0.0.0.0/", "0.0.0.0 resolves to 0.0.0.0, an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 resolves to 224.0.0.1, a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 resolves to 240.0.0.1, a private address"),
        ("http://100.64.0.1/", "100.64.0.1 resolves to 100.64.0.1, a non-public address"),
        ("http://[::1]/", "::1 resolves to ::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("http://[fe80::1]/", "fe80::1 resolves to fe80::1, a link-local address"),
        ("http://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("http://localhost:8000/", "localhost resolves to 127.0.0.1, a loopback address"),
        ("file:///etc/passwd", "scheme 'file' is not allowed; only http and https"),
        ("gopher://example.com/", "scheme 'gopher' is not allowed; only http and https"),
        ("http://user:secret@example.com/", "URLs with credentials are not allowed"),
        ("http:///nohost", "the URL has no host"),
    ],
)
def test_internal_and_odd_start_urls_are_refused_by_default(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WebsiteCrawler().crawl(url)
    assert caught.value.message.endswith(f": {reason}")


def test_names_are_resolved_and_every_address_must_be_public() -> None:
    table = {
        "intranet.example": ["10.1.2.3"],
        "mixed.example": ["93.184.215.14", "192.168.0.5"],
        "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "v6mapped.example": ["::ffff:169.254.169.254"],
    }

    def resolver(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    guard = AddressGuard(resolver=resolver)
    for host, expected in [
        ("intranet.example", "intranet.example resolves to 10.1.2.3, a private address"),
        ("mixed.example", "mixed.example resolves to 192.168.0.5, a private address"),
        ("v6mapped.example", "v6mapped.example resolves to 169.254.169.254, a link-local address"),
        ("unknown.example", "cannot resolve unknown.example: [Errno -2] Name or service not known"),
    ]:
        with pytest.raises(RefusedUrl) as caught:
            guard.check(f"https://{host}/")
        assert caught.value.reason == expected
    guard.check("https://public.example/page")  # allowed: no exception


def test_allow_list_is_exact_and_private_networks_can_be_opened_explicitly() -> None:
    guard = AddressGuard(allowed_hosts=["127.0.0.1:8123"])
    guard.check("http://127.0.0.1:8123/")
    with pytest.raises(RefusedUrl, match="loopback"):
        guard.check("http://127.0.0.1:8124/")
    AddressGuard(allowed_hosts=["wiki.corp"], resolver=lambda h, p: ["10.0.0.9"]).check("https://wiki.corp/x")
    AddressGuard(allow_private_networks=True).check("http://10.0.0.1/")
    with pytest.raises(RefusedUrl, match="scheme"):
        AddressGuard(allow_private_networks=True).check("ftp://10.0.0.1/")


def test_crawler_uses_an_injected_client(site: Site) -> None:
    with httpx.Client(trust_env=False) as client:
        crawler = WebsiteCrawler(CrawlOptions(max_pages=1), guard=guard_for(site), client=client)
        assert len(list(crawler.crawl(site.base))) == 1
        assert not client.is_closed


# --------------------------------------------------------------------------- options and urls


@pytest.mark.parametrize(
    "bad",
    [
        {"max_pages": 0},
        {"max_depth": -1},
        {"request_timeout": 0},
        {"time_budget": -1},
        {"max_bytes_per_page": 0},
        {"max_redirects": -1},
        {"allowed_content_types": frozenset()},
    ],
)
def test_invalid_options_are_typed_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        CrawlOptions(**bad)


def test_url_normalisation() -> None:
    assert normalise_url("HTTP://Example.COM:80/a?b=1#frag") == "http://example.com/a?b=1"
    assert normalise_url("https://example.com") == "https://example.com/"
    assert normalise_url("https://example.com:8443/x") == "https://example.com:8443/x"
    assert normalise_url("http://[::1]:8080/") == "http://[::1]:8080/"
