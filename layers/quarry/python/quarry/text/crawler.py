"""Website crawling for ingestion: bounded, polite and refusing to reach inside the network.

* Bounded: page count, link depth, bytes per page, time per request and a total time budget.
* Polite: robots.txt is honoured for the ``QuarryBot`` user agent (``urllib.robotparser``).
* SSRF-safe: before every request (the start URL, each link, each redirect hop: redirects
  are followed by hand so every ``Location`` is checked) the host is resolved and refused if
  any address is private, loopback, link-local, multicast, reserved, unspecified or
  otherwise not globally routable (IPv4 inside IPv6, as mapped, NAT64 or 6to4, included).
  Only http and https. Tests serving pages on 127.0.0.1 allow-list that ``host:port``
  explicitly; nothing else is let through by default. Link-local addresses (169.254.0.0/16,
  where the EC2 instance metadata 169.254.169.254 and the ECS task metadata and credentials
  169.254.170.2 live; fe80::/10) and AWS's fd00:ec2::/64 are refused even for allow-listed
  hosts and with ``allow_private_networks``.
* Pinned: the connection goes to the address that was checked. A crawl resolves each
  host once (every later URL and redirect hop to that host reuses the checked answer);
  the request is sent to that address, with the ``Host`` header, TLS SNI and certificate
  verification all kept on the name (httpx's ``sni_hostname`` extension), so httpx never
  resolves the name again and a DNS answer that changes after the check (rebinding) is
  never connected to. Each host name gets its own connection pool, so a connection
  verified for one name is never reused for another that shares its address.
* Deadlines: a page (all its redirect hops and its body) has ``request_timeout`` and the
  crawl ``time_budget``; both are checked while the body streams, after every chunk, so a
  server dripping bytes cannot hold the crawl past its deadline by more than one read
  (at most ``request_timeout``, itself capped by the time left).
"""

from __future__ import annotations

import html
import ipaddress
import logging
import re
import socket
import time
import urllib.robotparser
from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import httpx

from quarry.errors import InvalidInput

__all__ = [
    "AddressGuard",
    "CrawlMode",
    "CrawlOptions",
    "CrawlRun",
    "CrawledPage",
    "Destination",
    "RefusedUrl",
    "Resolver",
    "SkippedUrl",
    "WebsiteCrawler",
]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}
_ROBOTS_MAX_BYTES = 512 * 1024
_SITEMAP_MAX_FILES = 20
_DISALLOW_ALL = ["User-agent: *", "Disallow: /"]
_LOC = re.compile(rb"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)


class CrawlMode(StrEnum):
    FOLLOW_LINKS = "follow_links"
    SITEMAP = "sitemap"


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    mode: CrawlMode = CrawlMode.FOLLOW_LINKS
    same_domain_only: bool = True
    max_pages: int = 100
    max_depth: int = 2
    allowed_content_types: frozenset[str] = frozenset({"text/html", "text/plain", "application/pdf"})
    request_timeout: float = 10.0
    time_budget: float = 300.0
    max_bytes_per_page: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "QuarryBot"

    def __post_init__(self) -> None:
        if self.max_pages < 1:
            raise InvalidInput("max_pages must be at least 1")
        if self.max_depth < 0:
            raise InvalidInput("max_depth must not be negative")
        if self.request_timeout <= 0 or self.time_budget <= 0:
            raise InvalidInput("timeouts must be positive")
        if self.max_bytes_per_page < 1 or self.max_redirects < 0:
            raise InvalidInput("max_bytes_per_page must be positive and max_redirects not negative")
        if not self.allowed_content_types:
            raise InvalidInput("allowed_content_types must not be empty")


@dataclass(frozen=True, slots=True)
class CrawledPage:
    url: str
    content_type: str
    data: bytes
    title: str
    depth: int


@dataclass(frozen=True, slots=True)
class SkippedUrl:
    url: str
    reason: str


class RefusedUrl(Exception):
    """A URL the crawler will not request; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- addresses


def _system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Never requested, whatever the allow-list says: the cloud's metadata and credentials endpoints
# (EC2 169.254.169.254, ECS task metadata/credentials 169.254.170.2, AWS's IPv6 fd00:ec2::254) and
# the rest of link-local.
_ALWAYS_REFUSED = (
    ("a link-local", ipaddress.ip_network("169.254.0.0/16")),
    ("a link-local", ipaddress.ip_network("fe80::/10")),
    ("an AWS instance-metadata", ipaddress.ip_network("fd00:ec2::/64")),
)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) IPv6 address reaches."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _forbidden_kind(ip: IPAddress) -> str | None:
    checks = (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
        ("a non-public", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _always_refused_kind(ip: IPAddress) -> str | None:
    return next((kind for kind, network in _ALWAYS_REFUSED if ip.version == network.version and ip in network), None)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where requests for ``host:port`` go: ``address``, the one that was checked.

    ``host`` is the URL's host (a lower-case name or an address literal); for a name it is
    what the ``Host`` header, TLS SNI and certificate verification use.
    """

    host: str
    port: int
    address: IPAddress

    @property
    def is_name(self) -> bool:
        try:
            ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            return True
        return False


class AddressGuard:
    """Decides whether a URL may be requested. Refuses internal addresses unless told otherwise.

    ``allowed_hosts`` exempts exact ``host`` or ``host:port`` entries (e.g. a test server on
    ``127.0.0.1:8123``); ``allow_private_networks`` turns the address check off altogether.
    """

    def __init__(
        self,
        *,
        allow_private_networks: bool = False,
        allowed_hosts: Iterable[str] = (),
        resolver: Resolver | None = None,
    ) -> None:
        self._allow_private = allow_private_networks
        self._allowed = frozenset(host.lower() for host in allowed_hosts)
        self._resolve = resolver or _system_resolver

    def check(self, url: str) -> None:
        """Raise ``RefusedUrl`` unless ``url`` may be requested."""
        self.destination(url)

    def destination(
        self, url: str, *, known: MutableMapping[tuple[str, int], Destination] | None = None
    ) -> Destination:
        """The checked address to connect to for ``url``, or ``RefusedUrl``.

        ``known`` (one crawl's answers): a host already resolved and accepted is not resolved
        again, so every request of the crawl goes to the address that was checked.
        """
        host, port, exempt = self._target(url)
        if known is not None and (host, port) in known:
            return known[(host, port)]
        addresses = self._addresses(host, port)
        for address in addresses:
            for candidate in (address, _embedded_ipv4(address)):
                if candidate is None:
                    continue
                kind = _always_refused_kind(candidate) if exempt else _forbidden_kind(candidate)
                if kind is not None:
                    raise RefusedUrl(f"{host} resolves to {candidate}, {kind} address")
        destination = Destination(host, port, addresses[0])
        if known is not None:
            known[(host, port)] = destination
        return destination

    def _target(self, url: str) -> tuple[str, int, bool]:
        """(host, port, exempt from the private-address refusal) of a URL we may request at all."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise RefusedUrl(f"scheme {parts.scheme or '(none)'!r} is not allowed; only http and https")
        if parts.username is not None or parts.password is not None:
            raise RefusedUrl("URLs with credentials are not allowed")
        host = (parts.hostname or "").lower()
        if not host:
            raise RefusedUrl("the URL has no host")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise RefusedUrl(f"invalid port: {exc}") from exc
        exempt = self._allow_private or host in self._allowed or f"{host}:{port}" in self._allowed
        return host, port, exempt

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
            raw = [str(literal)]
        except ValueError:
            try:
                raw = self._resolve(host, port)
            except (OSError, UnicodeError) as exc:
                raise RefusedUrl(f"cannot resolve {host}: {exc}") from exc
        if not raw:
            raise RefusedUrl(f"{host} has no addresses")
        addresses: list[IPAddress] = []
        for value in raw:
            try:
                address = ipaddress.ip_address(value.split("%", 1)[0])
            except ValueError as exc:
                raise RefusedUrl(f"{host} resolves to {value!r}, not an address") from exc
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            addresses.append(address)
        return addresses


# --------------------------------------------------------------------------- urls and html


def normalise_url(url: str) -> str:
    """Absolute URL without fragment, with lower-case scheme and host and no default port."""
    url, _ = urldefrag(url.strip())
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return url
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{shown}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:  # kept so that the guard can refuse it, never silently dropped
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


class _PageLinks(HTMLParser):
    """``<title>``, ``<base href>`` and the ``href`` of links in an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.base: str | None = None
        self._title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "title":
            self._in_title = True
        elif tag == "base" and href and self.base is None:
            self.base = href
        elif tag in ("a", "area") and href:
            self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)

    @property
    def title(self) -> str:
        return " ".join("".join(self._title).split())


def _charset(content_type_header: str) -> str:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type_header, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def _read_html(data: bytes, header: str, url: str) -> tuple[str, list[str]]:
    """Title and absolute, normalised http(s) links of a page."""
    try:
        text = data.decode(_charset(header), errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    parser = _PageLinks()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # HTMLParser is lenient, but never let one odd page stop a crawl
        logger.debug("could not parse links of %s", url, exc_info=True)
    base = urljoin(url, parser.base) if parser.base else url
    links = []
    for href in parser.links:
        absolute = normalise_url(urljoin(base, html.unescape(href)))
        if urlsplit(absolute).scheme in _SCHEMES:
            links.append(absolute)
    return parser.title, links


def _fallback_title(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] or urlsplit(url).hostname or url


# --------------------------------------------------------------------------- fetching


@dataclass(frozen=True, slots=True)
class _Response:
    url: str
    status: int
    content_type: str
    header: str
    data: bytes


class _OutOfTime(Exception):
    pass


@dataclass
class _Budget:
    deadline: float
    clock: Callable[[], float]

    def remaining(self) -> float:
        return self.deadline - self.clock()


@dataclass(frozen=True, slots=True)
class _Deadline:
    """One page's deadline: its own allowance, never past the crawl's budget."""

    at: float
    allowance: float
    budget: _Budget

    @classmethod
    def for_page(cls, budget: _Budget, request_timeout: float) -> _Deadline:
        allowance = min(request_timeout, budget.remaining())
        return cls(budget.clock() + allowance, allowance, budget)

    def remaining(self) -> float:
        return self.at - self.budget.clock()

    def expired(self) -> Exception:
        """What to raise once the deadline has passed: the crawl is out of time, or only this page is."""
        if self.budget.remaining() <= 0:
            return _OutOfTime()
        return RefusedUrl(f"timed out after {self.allowance:.1f}s")


class _Clients:
    """One httpx client per host name (or the injected one for all).

    Requests go to an address, not a name, and a connection pool is keyed by address: a shared
    pool could send a request for one name over a TLS connection verified for another.
    """

    def __init__(self, injected: httpx.Client | None) -> None:
        self._injected = injected
        self._own: dict[str, httpx.Client] = {}

    def for_host(self, host: str) -> httpx.Client:
        if self._injected is not None:
            return self._injected
        if host not in self._own:
            self._own[host] = httpx.Client(follow_redirects=False, trust_env=False)
        return self._own[host]

    def close(self) -> None:
        for client in self._own.values():
            client.close()
        self._own.clear()


class _Fetcher:
    """GET with manual redirects, an address check and a pinned connection per hop, size, type and time limits."""

    def __init__(
        self,
        clients: _Clients,
        guard: AddressGuard,
        options: CrawlOptions,
        budget: _Budget,
        pins: MutableMapping[tuple[str, int], Destination],
    ) -> None:
        self._clients = clients
        self._guard = guard
        self._options = options
        self._budget = budget
        self._pins = pins

    def check(self, url: str) -> None:
        self._destination(url)

    def _destination(self, url: str) -> Destination:
        return self._guard.destination(url, known=self._pins)

    def get(
        self,
        url: str,
        *,
        accept: frozenset[str] | None,
        max_bytes: int,
        in_scope: Callable[[str], str | None] = lambda _: None,
        permitted: Callable[[str], str | None] = lambda _: None,
    ) -> _Response:
        """Fetch ``url``, following redirects; each hop is checked for scope, then address, then ``permitted``.

        The page (every hop and the body) has ``request_timeout``, within what is left of the crawl's budget.
        """
        deadline = _Deadline.for_page(self._budget, self._options.request_timeout)
        current = url
        for hop in range(self._options.max_redirects + 1):
            if hop:
                refusal = in_scope(current)
                if refusal is None:
                    try:
                        destination = self._destination(current)
                    except RefusedUrl as refused:
                        refusal = refused.reason
                refusal = refusal or permitted(current)
                if refusal is not None:
                    raise RefusedUrl(f"redirected to {current}: {refusal}")
            else:
                destination = self._destination(current)
            response = self._request(current, destination, deadline, accept=accept, max_bytes=max_bytes)
            if isinstance(response, _Response):
                return response
            current = normalise_url(urljoin(current, response))
        raise RefusedUrl(f"more than {self._options.max_redirects} redirects")

    def _request(
        self, url: str, destination: Destination, deadline: _Deadline, *, accept: frozenset[str] | None, max_bytes: int
    ) -> _Response | str:
        """The response, or the ``Location`` of a redirect. Sent to ``destination.address``, never re-resolved."""
        timeout = deadline.remaining()
        if timeout <= 0:
            raise deadline.expired()
        target = httpx.URL(url)
        headers = {"User-Agent": self._options.user_agent, "Accept": "*/*"}
        extensions: dict[str, object] = {}
        if destination.is_name:
            # Connect to the checked address; the name stays in Host, SNI and the certificate check.
            headers["Host"] = target.netloc.decode("ascii")
            extensions["sni_hostname"] = target.raw_host.decode("ascii")
            target = target.copy_with(host=str(destination.address))
        client = self._clients.for_host(destination.host)
        try:
            with client.stream(
                "GET", target, headers=headers, timeout=timeout, follow_redirects=False, extensions=extensions
            ) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    return location
                return self._read(url, response, deadline, accept=accept, max_bytes=max_bytes)
        except httpx.TimeoutException as exc:
            raise deadline.expired() from exc
        except httpx.HTTPError as exc:
            raise RefusedUrl(f"request failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _read(
        url: str, response: httpx.Response, deadline: _Deadline, *, accept: frozenset[str] | None, max_bytes: int
    ) -> _Response:
        header = response.headers.get("content-type", "")
        media_type = header.split(";", 1)[0].strip().lower() or "application/octet-stream"
        if response.status_code != 200:
            return _Response(url, response.status_code, media_type, header, b"")
        if accept is not None and media_type not in accept:
            raise RefusedUrl(f"content type {media_type} is not allowed")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise RefusedUrl(f"larger than {max_bytes} bytes ({declared} declared)")
        body = bytearray()
        for piece in response.iter_bytes():
            body.extend(piece)
            if len(body) > max_bytes:
                raise RefusedUrl(f"larger than {max_bytes} bytes")
            if deadline.remaining() <= 0:  # a slow drip: each read is quick, the page is not
                raise deadline.expired()
        return _Response(url, 200, media_type, header, bytes(body))


class _Robots:
    """robots.txt per origin, fetched once each through the same guarded fetcher."""

    def __init__(self, fetcher: _Fetcher, user_agent: str) -> None:
        self._fetcher = fetcher
        self._agent = user_agent
        self._cache: dict[str, tuple[urllib.robotparser.RobotFileParser, str]] = {}

    def refusal(self, url: str) -> str | None:
        """None when ``url`` may be fetched, else why not."""
        rules, why = self._rules(_origin(url))
        return None if rules.can_fetch(self._agent, url) else why

    def sitemaps(self, url: str) -> list[str]:
        return list(self._rules(_origin(url))[0].site_maps() or [])

    def _rules(self, origin: str) -> tuple[urllib.robotparser.RobotFileParser, str]:
        if origin not in self._cache:
            self._cache[origin] = self._load(origin)
        return self._cache[origin]

    def _load(self, origin: str) -> tuple[urllib.robotparser.RobotFileParser, str]:
        rules = urllib.robotparser.RobotFileParser(f"{origin}/robots.txt")
        try:
            response = self._fetcher.get(f"{origin}/robots.txt", accept=None, max_bytes=_ROBOTS_MAX_BYTES)
        except RefusedUrl as refused:
            rules.parse(_DISALLOW_ALL)
            return rules, f"robots.txt unavailable ({refused.reason})"
        # As urllib.robotparser.read(): 401/403 forbid everything, other 4xx allow everything,
        # and a server error means we cannot know, so nothing is crawled.
        if response.status in (401, 403) or response.status >= 500:
            rules.parse(_DISALLOW_ALL)
            return rules, f"robots.txt unavailable (HTTP {response.status})"
        rules.parse([] if response.status >= 400 else response.data.decode("utf-8", errors="replace").splitlines())
        return rules, "disallowed by robots.txt"


# --------------------------------------------------------------------------- the crawl


class CrawlRun:
    """One crawl. Iterate it (once) for pages; ``skipped`` and ``stop_reason`` fill in as it goes."""

    def __init__(self, start_url: str, pages: Callable[[CrawlRun], Iterator[CrawledPage]]) -> None:
        self.start_url = start_url
        self.skipped: list[SkippedUrl] = []
        self.stop_reason: str | None = None
        self._pages = pages(self)

    def __iter__(self) -> Iterator[CrawledPage]:
        return self._pages


class WebsiteCrawler:
    def __init__(
        self,
        options: CrawlOptions | None = None,
        *,
        guard: AddressGuard | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options or CrawlOptions()
        self._guard = guard or AddressGuard()
        self._client = client
        self._clock = clock

    @property
    def options(self) -> CrawlOptions:
        return self._options

    def crawl(self, start_url: str) -> CrawlRun:
        """Check the start URL now (``InvalidInput`` if refused); pages are fetched as the run is iterated."""
        start = normalise_url(start_url)
        pins: dict[tuple[str, int], Destination] = {}  # this crawl's checked answers, one per host
        try:
            self._guard.destination(start, known=pins)
        except RefusedUrl as refused:
            raise InvalidInput(f"cannot crawl {start_url}: {refused.reason}") from refused
        return CrawlRun(start, lambda run: self._pages(run, pins))

    def _pages(self, run: CrawlRun, pins: dict[tuple[str, int], Destination]) -> Iterator[CrawledPage]:
        clients = _Clients(self._client)
        budget = _Budget(self._clock() + self._options.time_budget, self._clock)
        try:
            session = _Session(self._options, run, _Fetcher(clients, self._guard, self._options, budget, pins))
            yield from session.run()
        finally:
            clients.close()


class _Session:
    """The state of one crawl: frontier, seen URLs and counters."""

    def __init__(self, options: CrawlOptions, run: CrawlRun, fetcher: _Fetcher) -> None:
        self._options = options
        self._run = run
        self._fetcher = fetcher
        self._robots = _Robots(fetcher, options.user_agent)
        self._site = _site(run.start_url)
        self._seen: set[str] = set()
        self._frontier: deque[tuple[str, int]] = deque()
        self._yielded = 0

    def run(self) -> Iterator[CrawledPage]:
        try:
            if self._options.mode is CrawlMode.SITEMAP:
                self._enqueue_sitemap()
            else:
                self._enqueue(self._run.start_url, 0)
            yield from self._drain()
        except _OutOfTime:
            self._stop("time budget exhausted")

    def _skip(self, url: str, reason: str) -> None:
        logger.debug("skipping %s: %s", url, reason)
        self._run.skipped.append(SkippedUrl(url, reason))

    def _stop(self, reason: str) -> None:
        self._run.stop_reason = reason
        for url, _ in self._frontier:
            self._skip(url, reason)
        self._frontier.clear()

    def _enqueue(self, url: str, depth: int) -> None:
        if url in self._seen:
            return
        self._seen.add(url)
        out_of_scope = self._out_of_scope(url)
        if out_of_scope is not None:
            self._skip(url, out_of_scope)
        elif depth > self._options.max_depth:
            self._skip(url, f"deeper than max_depth {self._options.max_depth}")
        else:
            self._frontier.append((url, depth))

    def _out_of_scope(self, url: str) -> str | None:
        if self._options.same_domain_only and _site(url) != self._site:
            return "outside the start site"
        return None

    def _drain(self) -> Iterator[CrawledPage]:
        while self._frontier:
            if self._yielded >= self._options.max_pages:
                self._stop(f"max_pages {self._options.max_pages} reached")
                return
            url, depth = self._frontier.popleft()
            try:
                page = self._visit(url, depth)
            except _OutOfTime:
                self._frontier.appendleft((url, depth))
                raise
            if page is not None:
                self._yielded += 1
                yield page

    def _visit(self, url: str, depth: int) -> CrawledPage | None:
        try:
            self._fetcher.check(url)
        except RefusedUrl as refused:
            self._skip(url, refused.reason)
            return None
        refusal = self._robots.refusal(url)
        if refusal is not None:
            self._skip(url, refusal)
            return None
        try:
            response = self._fetcher.get(
                url,
                accept=self._options.allowed_content_types,
                max_bytes=self._options.max_bytes_per_page,
                in_scope=self._out_of_scope,
                permitted=self._robots.refusal,
            )
        except RefusedUrl as refused:
            self._skip(url, refused.reason)
            return None
        if response.status != 200:
            self._skip(url, f"HTTP {response.status}")
            return None
        if response.url != url and response.url in self._seen:
            self._skip(url, f"redirects to {response.url}, already crawled")
            return None
        self._seen.add(response.url)
        title = _fallback_title(response.url)
        if response.content_type == "text/html":
            html_title, links = _read_html(response.data, response.header, response.url)
            title = html_title or title
            if self._options.mode is CrawlMode.FOLLOW_LINKS:
                for link in links:
                    self._enqueue(link, depth + 1)
        return CrawledPage(response.url, response.content_type, response.data, title, depth)

    def _enqueue_sitemap(self) -> None:
        start = self._run.start_url
        if urlsplit(start).path.lower().endswith(".xml"):
            pending = [start]
        else:
            pending = self._robots.sitemaps(start) or [f"{_origin(start)}/sitemap.xml"]
        fetched = 0
        while pending and fetched < _SITEMAP_MAX_FILES:
            sitemap = normalise_url(pending.pop(0))
            fetched += 1
            for loc, nested in self._sitemap_entries(sitemap):
                if nested:
                    pending.append(loc)
                else:
                    self._enqueue(loc, 0)

    def _sitemap_entries(self, url: str) -> list[tuple[str, bool]]:
        try:
            self._fetcher.check(url)
        except RefusedUrl as refused:
            self._skip(url, refused.reason)
            return []
        refusal = self._out_of_scope(url) or self._robots.refusal(url)
        if refusal is not None:
            self._skip(url, refusal)
            return []
        try:
            response = self._fetcher.get(
                url,
                accept=None,
                max_bytes=self._options.max_bytes_per_page,
                in_scope=self._out_of_scope,
                permitted=self._robots.refusal,
            )
        except RefusedUrl as refused:
            self._skip(url, refused.reason)
            return []
        if response.status != 200:
            self._skip(url, f"sitemap: HTTP {response.status}")
            return []
        nested = b"<sitemapindex" in response.data[:4096].lower()
        locations = (html.unescape(raw.decode("utf-8", errors="replace")) for raw in _LOC.findall(response.data))
        return [(normalise_url(urljoin(url, loc)), nested) for loc in locations]
