"""A real TLS terminator for the tests: throwaway certificates and nginx in front of a gRPC server.

The Temporal dev server speaks plain gRPC only, so TLS, mutual TLS and API keys are tested
the way many deployments run them: nginx terminates TLS (``grpc_pass``) on a free loopback
port, checks what it is told to check, and forwards to the dev server.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shadow_sdk.testing import BackgroundProcess, ProcessExited, free_port

# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
NGINX_CANDIDATES = (Path("/usr/sbin/nginx"),)

CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def find_nginx() -> Path | None:
    """Debian's nginx (what .ci/run installs), else one on PATH, else None."""
    for candidate in NGINX_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nginx")
    return Path(found) if found else None


@dataclass(frozen=True)
class Authority:
    """A certificate authority that lives as long as a test: its key never leaves memory."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, certificate)

    def issue(self, directory: Path, name: str, *, server: bool) -> tuple[Path, Path]:
        """Write a leaf certificate and its key (PKCS#8) as PEM files; return their paths.

        Server certificates are valid for ``localhost`` and ``127.0.0.1``; client
        certificates carry ``name`` as their common name.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        certificate_path = directory / f"{name}.crt"
        key_path = directory / f"{name}.key"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return certificate_path, key_path

    def write(self, directory: Path) -> Path:
        """Write the CA certificate (what clients trust) as PEM; return its path."""
        path = directory / f"{self.name}.crt"
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


@dataclass(frozen=True)
class Terminator:
    """How nginx terminates TLS: its certificate, and what it demands of clients."""

    certificate: Path
    key: Path
    client_ca: Path | None = None
    """Require a client certificate issued by this CA (``ssl_verify_client on``)."""
    api_key: str | None = None
    """Require ``authorization: Bearer <api_key>``, as Temporal Cloud does."""


def nginx_config(directory: Path, port: int, upstream: str, terminator: Terminator) -> str:
    """An nginx configuration that keeps everything (pid, logs, temp files) in ``directory``.

    Refusals are answered the gRPC way, a status in the response headers, as a Temporal
    server would answer: nginx's own answer to a missing client certificate is an HTML
    page with HTTP status 400, which gRPC clients report as "invalid compression flag".
    """
    client_auth = (
        f"ssl_client_certificate {terminator.client_ca};\n        ssl_verify_client on;"
        if terminator.client_ca
        else ""
    )
    # gRPC clients send the API key as the `authorization` metadata, an HTTP/2 header.
    key_check = (
        f'if ($http_authorization != "Bearer {terminator.api_key}") {{ return 401; }}'
        if terminator.api_key
        else ""
    )
    refusals = "".join(
        f"""
        error_page {status} = @refused_{status};
        location @refused_{status} {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "{message}" always;
            return 204;
        }}"""
        for status, message in (
            (401, "missing or invalid API key"),
            (495, "client certificate not trusted"),
            (496, "client certificate required"),
        )
    )
    return f"""\
daemon off;
# One process: no worker user to switch to, and SIGTERM stops it at once.
master_process off;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 128; }}
http {{
    log_format tls '$ssl_protocol $ssl_client_verify "$ssl_client_s_dn" "$request" $status';
    access_log {directory}/access.log tls;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {terminator.certificate};
        ssl_certificate_key {terminator.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        {client_auth}
        client_max_body_size 0;
        location / {{
            {key_check}
            # Workers long-poll for up to 70 s.
            grpc_read_timeout 300s;
            grpc_send_timeout 300s;
            grpc_pass grpc://{upstream};
        }}{refusals}
    }}
}}
"""


@dataclass(frozen=True)
class Gateway:
    """A running nginx: the address to connect to, and what it logged."""

    address: str
    directory: Path

    def access_log(self) -> list[str]:
        """One line per request: TLS version, client verification, client DN, request, status."""
        path = self.directory / "access.log"
        return path.read_text().splitlines() if path.exists() else []


@contextmanager
def nginx_terminator(
    nginx: Path, directory: Path, upstream: str, terminator: Terminator
) -> Iterator[Gateway]:
    """Run nginx in front of ``upstream`` (host:port) until the block ends, also on failure."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port, upstream, terminator))
    error_log = directory / "error.log"
    command = [str(nginx), "-p", str(directory), "-c", str(config), "-e", str(error_log)]
    with BackgroundProcess(command, name="nginx").start() as process:
        try:
            process.wait_until_listening(port)
        except (ProcessExited, TimeoutError) as error:
            log = error_log.read_text(errors="replace") if error_log.exists() else ""
            raise AssertionError(f"{error}\n{log}") from None
        yield Gateway(f"127.0.0.1:{port}", directory)
