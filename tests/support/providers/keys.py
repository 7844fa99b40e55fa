"""Keys and certificates the local providers need, made on the fly with ``cryptography``.

A self-signed certificate for 127.0.0.1/localhost (TLS for SMTP and APNs), an RSA service-account
key file for FCM, and an EC P-256 .p8 key for APNs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(slots=True, frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path


def self_signed(folder: Path) -> Certificate:
    """A certificate for localhost and 127.0.0.1, which is its own CA (pass cert_file as the CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_file, key_file)


@dataclass(slots=True, frozen=True)
class ServiceAccount:
    path: Path
    project_id: str
    client_email: str
    public_key_pem: bytes


def service_account(folder: Path, token_uri: str, project_id: str = "refract-test") -> ServiceAccount:
    """A Google service-account key file (the JSON the Firebase console downloads)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
    document = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "k1",
        "private_key": private_pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": token_uri,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "service-account.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ServiceAccount(path, project_id, email, public)


@dataclass(slots=True, frozen=True)
class ApnsKey:
    path: Path
    key_id: str
    team_id: str
    public_key_pem: bytes


def apns_key(folder: Path, key_id: str = "ABC123DEFG", team_id: str = "TEAM123456") -> ApnsKey:
    """An APNs auth key (.p8: a PKCS#8 EC P-256 private key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"AuthKey_{key_id}.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ApnsKey(path, key_id, team_id, public)
