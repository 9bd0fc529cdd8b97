"""Hostile inputs from the hardening probe (issue #13): DNS rebinding, a slow-drip web page, a zip bomb.

Each test reproduces what the probe did against the real code: the crawler (``WebsiteCrawler`` /
``CrawlerPageSource``), the local workflow and the parser run as ``quarry serve`` runs them; only the
catalog, index and blob store are the in-memory fakes and the embedder a flat one. "The internet" is
loopback servers behind a routing table the tests control (``Internet``): names are answered by a DNS
the test scripts, and a connection to a public-looking address lands on a loopback server.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import socket
import ssl
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from quarry.models import Document, DocumentStatus
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.text.crawler import AddressGuard, CrawlOptions, RefusedUrl, WebsiteCrawler
from quarry.text.website_source import CrawlerPageSource
from quarry.wiring import Services, build_services
from tests.fakes import FakeBlobStore, FakeCatalog, FakeChatHistory, FakeConnections, FakeVectorIndex
from tests.sample_files import make_docx

USER = "hardening-user"
PUBLIC = "93.184.215.14"  # what the attacker's name answers when it is checked
PUBLIC_HOP = "93.184.215.15"
ECS_CREDENTIALS = "169.254.170.2"  # what it answers afterwards: the ECS task metadata/credentials endpoint


# --------------------------------------------------------------------------- servers and the network


@dataclass
class Server:
    """A loopback HTTP(S) server; ``requests`` records (path, Host header) in arrival order."""

    respond: Callable[[BaseHTTPRequestHandler], None]
    requests: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    sni: list[str | None] = field(default_factory=list)


def _page(body: bytes, content_type: str = "text/html") -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/robots.txt":
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[ThreadingHTTPServer] = []

    def start(server: Server, tls: ssl.SSLContext | None = None) -> Server:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the crawler hung up
                    server.respond(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: server.sni.append(name)  # type: ignore[assignment]
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        server.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        return server

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Internet:
    """Scripted DNS answers and a routing table from public-looking addresses to loopback servers.

    ``dns(name)`` answers the name (the crawler's resolver and ``socket.getaddrinfo`` both ask it unless a
    test gives the crawler its own); ``connections`` records every address a socket connected to.
    """

    dns: Callable[[str], str]
    routes: dict[tuple[str, int], int] = field(default_factory=dict)
    connections: list[tuple[str, int]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def resolve(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        return [self.dns(host)]


@pytest.fixture
def internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[str], str]], Internet]]:
    made: list[Internet] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def make(dns: Callable[[str], str]) -> Internet:
        net = Internet(dns)
        made.append(net)
        return net

    def connect(self: socket.socket, address: Any) -> None:
        net = made[-1]
        host, port = str(address[0]), int(address[1])
        if host.startswith("127."):  # the test's own traffic (servers, Postgres) stays as it is
            real_connect(self, address)
            return
        net.connections.append((host, port))
        if (host, port) not in net.routes:
            raise OSError(f"test network: no route to {host}:{port}")
        real_connect(self, ("127.0.0.1", net.routes[(host, port)]))

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".example"):  # what httpx would see if it resolved the name again
            made[-1].queries.append(f"getaddrinfo {name}")
            return real_getaddrinfo(made[-1].dns(name), port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield make


def _rebinding(first: dict[str, str], then: str) -> Callable[[str], str]:
    """A TTL-0 DNS: each name's first answer is public-looking, every later one is ``then``."""
    asked: set[str] = set()

    def answer(name: str) -> str:
        if name in asked:
            return then
        asked.add(name)
        return first[name]

    return answer


# --------------------------------------------------------------------------- 1. DNS rebinding


def test_a_rebinding_name_is_connected_to_at_the_address_that_was_checked(
    serve: Callable[..., Server], internet: Callable[[Callable[[str], str]], Internet]
) -> None:
    """The probe: the check sees a public address, the connection another one (the ECS credentials).

    The crawl must resolve each name once, connect to the checked address for every page and every
    redirect hop (Host header kept), and never reach the address the name answers afterwards.
    """
    site = serve(Server(_site_with_a_redirect))
    hop = serve(Server(_page(b"<title>Landing</title>landed")))
    credentials = serve(Server(_page(b'{"AccessKeyId": "ASIA-STOLEN", "SecretAccessKey": "..."}', "text/plain")))
    net = internet(_rebinding({"rebind.example": PUBLIC, "hop.example": PUBLIC_HOP}, then=ECS_CREDENTIALS))
    net.routes = {(PUBLIC, 80): site.port, (PUBLIC_HOP, 80): hop.port, (ECS_CREDENTIALS, 80): credentials.port}

    crawler = WebsiteCrawler(CrawlOptions(same_domain_only=False), guard=AddressGuard(resolver=net.resolve))
    run = crawler.crawl("http://rebind.example/")
    pages = list(run)

    assert [page.url for page in pages] == [
        "http://rebind.example/",
        "http://rebind.example/two",
        "http://hop.example/landing",
    ]
    assert credentials.requests == [], "the address the name rebound to was reached"
    assert set(net.connections) == {(PUBLIC, 80), (PUBLIC_HOP, 80)}
    assert net.queries == ["rebind.example", "hop.example"], "each name is resolved once, by the check"
    assert {host for _, host in site.requests} == {"rebind.example"}
    assert hop.requests == [("/robots.txt", "hop.example"), ("/landing", "hop.example")]
    assert run.skipped == []


def _site_with_a_redirect(handler: BaseHTTPRequestHandler) -> None:
    if handler.path in ("/", "/robots.txt"):
        _page(b'<a href="/two">two</a> <a href="/away">away</a>')(handler)
    elif handler.path == "/away":
        handler.send_response(302)
        handler.send_header("Location", "http://hop.example/landing")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    else:
        _page(b"<title>Two</title>second page")(handler)


def test_the_connection_never_resolves_the_name_again(
    serve: Callable[..., Server], internet: Callable[[Callable[[str], str]], Internet]
) -> None:
    """The check's resolver says public; the system resolver (what httpx would ask) says the credentials
    endpoint. The page must come from the checked address, and the system resolver is never asked."""
    site = serve(Server(_page(b"<title>Public</title>public page")))
    credentials = serve(Server(_page(b"ASIA-STOLEN", "text/plain")))
    net = internet(lambda name: ECS_CREDENTIALS)
    net.routes = {(PUBLIC, 80): site.port, (ECS_CREDENTIALS, 80): credentials.port}

    def checked(host: str, port: int) -> list[str]:
        return [PUBLIC]

    pages = list(WebsiteCrawler(guard=AddressGuard(resolver=checked)).crawl("http://rebind.example/"))

    assert [page.data for page in pages] == [b"<title>Public</title>public page"]
    assert credentials.requests == []
    assert set(net.connections) == {(PUBLIC, 80)}
    assert net.queries == []


def _certificate(name: str) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key) in PEM, the server's certificate valid for ``name``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hardening test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


def _tls_server_context(tmp_path: Path, cert: bytes, key: bytes) -> ssl.SSLContext:
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.mark.parametrize(("certified", "crawled"), [("secure.example", True), ("other.example", False)])
def test_https_to_the_pinned_address_keeps_sni_and_verifies_the_certificate_for_the_name(
    serve: Callable[..., Server],
    internet: Callable[[Callable[[str], str]], Internet],
    tmp_path: Path,
    certified: str,
    crawled: bool,
) -> None:
    ca, cert, key = _certificate(certified)
    site = serve(Server(_page(b"<title>TLS</title>secure page")), tls=_tls_server_context(tmp_path, cert, key))
    net = internet(lambda name: PUBLIC)
    net.routes = {(PUBLIC, 443): site.port}
    trust = ssl.create_default_context(cadata=ca.decode())
    with httpx.Client(verify=trust, trust_env=False) as client:
        crawler = WebsiteCrawler(guard=AddressGuard(resolver=net.resolve), client=client)
        run = crawler.crawl("https://secure.example/")
        pages = list(run)
    assert net.connections and set(net.connections) == {(PUBLIC, 443)}
    assert site.sni and set(site.sni) == {"secure.example"}, "SNI carries the name, not the address"
    if crawled:
        assert [page.title for page in pages] == ["TLS"]
        assert {host for _, host in site.requests} == {"secure.example"}
    else:  # a certificate for another name is refused: it is checked against the name, not the address
        assert pages == []
        assert "CERTIFICATE_VERIFY_FAILED" in run.skipped[0].reason


@pytest.mark.parametrize(
    ("guard", "url"),
    [
        (AddressGuard(allow_private_networks=True), f"http://{ECS_CREDENTIALS}/v2/credentials"),
        (AddressGuard(allow_private_networks=True), "http://169.254.169.254/latest/meta-data/"),
        (AddressGuard(allowed_hosts=[ECS_CREDENTIALS]), f"http://{ECS_CREDENTIALS}/v2/credentials"),
        (
            AddressGuard(allowed_hosts=["creds.internal"], resolver=lambda host, port: [ECS_CREDENTIALS]),
            "http://creds.internal/v2/credentials",
        ),
        (AddressGuard(allowed_hosts=["v6.internal"], resolver=lambda host, port: ["fe80::1"]), "http://v6.internal/"),
        (
            AddressGuard(allow_private_networks=True, resolver=lambda host, port: ["64:ff9b::a9fe:aa02"]),
            "http://nat64.example/",
        ),
        (AddressGuard(resolver=lambda host, port: ["2002:a9fe:aa02::1"]), "http://sixtofour.example/"),
    ],
    ids=["private-open", "imds-private-open", "allow-listed-address", "allow-listed-name", "ipv6", "nat64", "6to4"],
)
def test_metadata_and_link_local_addresses_are_refused_whatever_is_allowed(guard: AddressGuard, url: str) -> None:
    """169.254.170.2 (ECS task credentials), 169.254.169.254 and the rest of link-local, also inside IPv6."""
    with pytest.raises(RefusedUrl) as refused:
        guard.check(url)
    assert refused.value.reason.endswith("a link-local address")


# --------------------------------------------------------------------------- 2. a slow drip holds no one back


class ManualClock:
    """The crawl's clock (``time.monotonic`` in production): moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _FlatEmbedder:
    name, dimensions = "flat-4", 4

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[0.5] * 4 for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [0.5] * 4


def _services(tmp_path: Path, **overrides: Any) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("flat-4", "flat", "test", dimensions=4), _FlatEmbedder)
    fakes = {
        "catalog": FakeCatalog(),
        "chat_history": FakeChatHistory(),
        "connections": FakeConnections(),
        "vector_index": FakeVectorIndex(),
        "blob_store": FakeBlobStore(),
        "models": models,
    }
    return build_services(Settings(data_dir=tmp_path, embedding_model="flat-4"), overrides=fakes | overrides)


def _document(services: Services, workspace_id: str, document_id: str) -> Document:
    document = services.adapters.catalog.get_document(workspace_id, document_id)
    assert document is not None
    return document


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    gave_up = threading.Event()
    timer = threading.Timer(timeout, gave_up.set)
    timer.start()
    try:
        while not condition():
            if gave_up.wait(0.02):
                raise AssertionError(f"gave up waiting for {what}")
    finally:
        timer.cancel()


_SETTLED = (DocumentStatus.PROCESSED, DocumentStatus.ERROR)


def test_a_slow_drip_page_ends_at_the_crawl_deadline_and_never_holds_an_upload_back(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    """The probe: a page sending a byte at a time held the single ingestion worker past the crawl's budget.

    The drip goes on for as long as the test lets it (a safety stop only keeps today's code from hanging).
    An upload submitted while the crawl reads must be processed while the crawl is still running; then the
    crawl's clock passes its budget and the crawl must end there, mid-body, with the deadline as its reason.
    """
    dripping, stop = threading.Event(), threading.Event()
    finished_sending: list[bool] = []

    def drip(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/robots.txt":
            _page(b"")(handler)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()  # no length: the body ends when the server closes
        handler.wfile.write(b"<html><title>Drip</title><body>")
        handler.wfile.flush()
        dripping.set()
        for _ in range(300):  # the safety stop: 15 s
            if stop.wait(0.05):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
        finished_sending.append(True)
        handler.close_connection = True

    site = serve(Server(drip))
    clock = ManualClock()
    crawler = CrawlerPageSource(allowed_hosts=[f"127.0.0.1:{site.port}"], time_budget=5.0, clock=clock)
    services = _services(tmp_path, crawler=crawler)
    try:
        ws = services.workspaces.create(USER, WorkspaceSpec(name="hostile", embedding_model="flat-4"))
        url = f"http://127.0.0.1:{site.port}/"
        crawl = services.documents.add_website(USER, ws.id, {"url": url, "max_pages": 1})
        assert dripping.wait(30), "the crawl never reached the dripping page"

        upload, _ = services.documents.add_file(USER, ws.id, "note.txt", b"Plimsk is the capital of Zorbania.")
        _wait_for(lambda: _document(services, ws.id, upload.id).status in _SETTLED, "the upload")
        assert _document(services, ws.id, upload.id).status is DocumentStatus.PROCESSED
        assert _document(services, ws.id, crawl.id).status is DocumentStatus.PROCESSING, "the crawl ended first"

        clock.now += 6.0  # past the crawl's 5 s budget, while the page is still dripping
        _wait_for(lambda: _document(services, ws.id, crawl.id).status in _SETTLED, "the crawl to end")
        ended = _document(services, ws.id, crawl.id)
        assert ended.status is DocumentStatus.ERROR
        assert ended.status_reason == f"{url}: no page crawled: time budget exhausted"
        assert finished_sending == [], "the crawl read the whole drip instead of stopping at its deadline"
    finally:
        stop.set()
        services.close()


# --------------------------------------------------------------------------- 3. a zip bomb in a DOCX


def _bomb_docx(padding_mib: int) -> bytes:
    """A valid DOCX (python-docx's) whose ``word/document.xml`` carries ``padding_mib`` MiB of spaces.

    Deflated, the padding is ~100 KB; inflated, the document is over 100 MB, as in the probe.
    """
    source = zipfile.ZipFile(io.BytesIO(make_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, data)
                continue
            head, tail = data.rsplit(b"</w:body>", 1)
            with bomb.open(info.filename, "w", force_zip64=True) as stream:
                stream.write(head)
                block = b" " * (1024 * 1024)
                for _ in range(padding_mib):
                    stream.write(block)
                stream.write(b"</w:body>" + tail)
    return out.getvalue()


def test_a_zip_bomb_docx_ends_in_error_before_it_is_inflated(tmp_path: Path) -> None:
    bomb = _bomb_docx(100)
    assert len(bomb) < 1024 * 1024  # a small upload
    services = _services(tmp_path)
    try:
        assert services.settings.archive_max_expanded_mb == 100
        ws = services.workspaces.create(USER, WorkspaceSpec(name="bombs", embedding_model="flat-4"))
        document, _ = services.documents.add_file(USER, ws.id, "bomb.docx", bomb)
        _wait_for(lambda: _document(services, ws.id, document.id).status in _SETTLED, "the bomb's ingestion")
        ended = _document(services, ws.id, document.id)
        assert ended.status is DocumentStatus.ERROR
        # Refused for its expanded size (the parser's "archive expands beyond 100 MB"), said in words.
        assert (ended.status_reason or "").startswith("This file is too large to process.")
        assert services.adapters.vector_index.count(ws.id, document_id=document.id) == 0
    finally:
        services.close()
