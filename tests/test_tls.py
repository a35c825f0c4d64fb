"""TLS on port 1493: plain and TLS clients side by side on the same port."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netmap_lm import LicenseClient, LicenseDenied, TlsSettings
from support import ServerProcess


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_server_cert(root):
    """A self-signed CA and a certificate for 127.0.0.1 that it signs."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: root / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return paths, fingerprint


@pytest.fixture
def tls_server(kit):
    paths, fingerprint = make_ca_and_server_cert(kit.root)
    kit.write_license()
    proc = ServerProcess(
        kit, "--tls-cert", str(paths["cert"]), "--tls-key", str(paths["key"])
    ).start()
    try:
        yield paths, fingerprint
    finally:
        proc.kill()


def test_plain_and_tls_clients_share_the_port(kit, tls_server):
    paths, fingerprint = tls_server
    plain = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
    by_ca = LicenseClient(
        servers=kit.servers,
        vendor_key=str(kit.vendor_pub),
        tls=TlsSettings(ca_file=str(paths["ca"])),
    )
    by_pin = LicenseClient(
        servers=kit.servers, vendor_key=str(kit.vendor_pub), tls=TlsSettings(pin_sha256=fingerprint)
    )
    try:
        leases = [c.checkout("netmap", "5.0") for c in (plain, by_ca, by_pin)]
        assert by_ca._session is not None and by_ca._session._sock.version().startswith("TLS")
        assert plain.status()["features"][0]["in_use"] == 3
        for lease in leases:
            lease.checkin()
    finally:
        for c in (plain, by_ca, by_pin):
            c.close()


def test_cli_over_tls(kit, tls_server):
    paths, _ = tls_server
    result = kit.cli("checkout", "netmap", "--tls-ca", str(paths["ca"]), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_wrong_ca_or_pin_is_not_trusted(kit, tls_server, tmp_path):
    other, _ = make_ca_and_server_cert(tmp_path)
    for tls in (TlsSettings(ca_file=str(other["ca"])), TlsSettings(pin_sha256="00" * 32)):
        client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), tls=tls)
        with pytest.raises(LicenseDenied) as info:
            client.checkout("netmap")
        assert info.value.reason == "SERVER_NOT_TRUSTED"
        client.close()
