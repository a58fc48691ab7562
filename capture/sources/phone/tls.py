"""The phone server's TLS certificate (self-signed, made once per machine) and the laptop's LAN address.

A phone's browser grants the camera (``getUserMedia``) to secure pages only, so the
page is served over HTTPS. No certificate authority vouches for a laptop on a
local network: the certificate is self-signed, the phone's browser warns once,
and the SHA-256 fingerprint printed at start lets the user check that the warning
is about this laptop's certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import UserError

log = logging.getLogger(__name__)

CONFIG_ENV = "PHOTOPROOF_CONFIG_DIR"


def config_dir() -> Path:
    """The per-user configuration folder: ``$PHOTOPROOF_CONFIG_DIR``, else the platform's usual place."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "photoproof"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "photoproof"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "photoproof"


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path
    fingerprint: str  # SHA-256 of the DER certificate, as AA:BB:...

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file created with ``mode``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def fingerprint(cert_pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex(":").upper()


def machine_certificate(directory: Path | None = None) -> Certificate:
    """This machine's certificate and key (``phone-cert.pem``, ``phone-key.pem``, key mode 0600); made on first use.

    An ECDSA P-256 key and a self-signed certificate for ``localhost`` and the host name, valid ten years.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = Path(directory) if directory is not None else config_dir()
    cert_path, key_path = d / "phone-cert.pem", d / "phone-key.pem"
    if cert_path.is_file() and key_path.is_file():
        try:
            pem = cert_path.read_bytes()
            serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            return Certificate(cert_path, key_path, fingerprint(pem))
        except (ValueError, OSError) as e:
            log.warning("%s: unreadable (%s); making a new certificate", cert_path, e)
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise UserError(
            f"{d}: cannot create the folder for the phone page's certificate ({e}); set {CONFIG_ENV} to a writable "
            "folder"
        ) from None
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "photoproof"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"photoproof on {host}"[:64])])
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if host.isascii() and host.replace("-", "").replace(".", "").isalnum():
        sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    try:
        _write_private(key_path, key_pem, 0o600)
        _write_private(cert_path, cert_pem, 0o644)
    except OSError as e:
        raise UserError(
            f"{d}: cannot write the phone page's certificate ({e}); set {CONFIG_ENV} to a writable folder"
        ) from None
    log.info("made a self-signed certificate for the phone page: %s", cert_path)
    return Certificate(cert_path, key_path, fingerprint(cert_pem))


def lan_address(bind: str = "0.0.0.0") -> str:
    """The address a phone on the same network reaches this laptop at, found without sending a packet.

    A specific ``bind`` address is that address. Otherwise connecting a UDP socket
    (which sends nothing) to a private address makes the OS pick the interface it
    would route through; failing that, the host name's address; failing that, 127.0.0.1.
    """
    if bind not in ("", "0.0.0.0", "::"):
        return bind
    for probe in ("10.255.255.255", "192.168.255.255", "172.31.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 1))
                addr = s.getsockname()[0]
            if addr and not addr.startswith(("127.", "0.")):
                return str(addr)
        except OSError:
            continue
    try:
        addr = socket.gethostbyname(socket.gethostname())
        if not addr.startswith("127."):
            return addr
    except OSError:
        pass
    return "127.0.0.1"
