"""A TLS front for the rehearsal's PostgreSQL, as Aurora's endpoint is: ``sslmode=require`` must succeed.

The embedded PostgreSQL build has no OpenSSL, so this proxy speaks PostgreSQL's SSL negotiation itself: it
answers the client's ``SSLRequest`` with ``S``, completes a TLS handshake with a throw-away self-signed
certificate, and relays the decrypted protocol to the real server over loopback TCP.
"""

from __future__ import annotations

import datetime as dt
import select
import socket
import ssl
import struct
import tempfile
import threading
from pathlib import Path

__all__ = ["TlsFront"]

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rehearsal-aurora")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _relay(secure: ssl.SSLSocket, backend: socket.socket) -> None:
    """Both directions in one thread: an SSL socket must not be read and written from two threads at once."""
    try:
        while True:
            readable, _, _ = select.select([secure, backend], [], [], 60)
            if not readable:
                continue
            for source in readable:
                if source is secure:
                    data = secure.recv(65536)
                    while data and secure.pending():
                        data += secure.recv(secure.pending())
                    if not data:
                        return
                    backend.sendall(data)
                else:
                    data = backend.recv(65536)
                    if not data:
                        return
                    secure.sendall(data)
    except OSError:
        return
    finally:
        secure.close()
        backend.close()


class TlsFront:
    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self._dir = tempfile.TemporaryDirectory(prefix="rehearsal-tls-")
        cert, key = _self_signed(Path(self._dir.name))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            length, code = struct.unpack(">II", client.recv(8, socket.MSG_WAITALL))
            if code == GSSENC_REQUEST:  # libpq may ask for GSS encryption first: refuse, then expect SSLRequest
                client.sendall(b"N")
                length, code = struct.unpack(">II", client.recv(8, socket.MSG_WAITALL))
            if length != 8 or code != SSL_REQUEST:
                client.close()  # Aurora with require_ssl would refuse plain connections too
                return
            client.sendall(b"S")
            secure = self._context.wrap_socket(client, server_side=True)
        except (OSError, struct.error, ssl.SSLError):
            client.close()
            return
        _relay(secure, socket.create_connection(("127.0.0.1", self.backend_port)))

    def close(self) -> None:
        self._listener.close()
        self._dir.cleanup()
