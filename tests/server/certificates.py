"""Throwaway X.509 material for the mutual-TLS tests, made with the ``openssl`` CLI: a CA, a
server certificate for 127.0.0.1 and client certificates, each a PEM file."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    key: Path
    cert: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> Pair:
    folder.mkdir(parents=True, exist_ok=True)
    ca = Pair(folder / f"{name}.key", folder / f"{name}.pem")
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-keyout", str(ca.key), "-out", str(ca.cert), "-subj", f"/CN={name}"),
    )
    return ca


def make_cert(folder: Path, name: str, ca: Pair, usage: str) -> Pair:
    """A key and certificate signed by ``ca`` for ``usage`` serverAuth (127.0.0.1,
    localhost) or clientAuth."""
    pair = Pair(folder / f"{name}.key", folder / f"{name}.pem")
    csr, ext = folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text(
        f"extendedKeyUsage={usage}\n"
        + ("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if usage == "serverAuth" else "")
    )
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pair.key), "-out", str(csr)),
        *("-subj", f"/CN={name}"),
    )
    _openssl(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key)),
        *("-CAcreateserial", "-days", "2", "-out", str(pair.cert), "-extfile", str(ext)),
    )
    return pair


@dataclass(frozen=True)
class Certificates:
    ca: Pair  # signs the Teacher server and the good client
    server: Pair
    client: Pair
    other_ca: Pair  # an unrelated CA, and a client it signed
    stranger: Pair


def make_certificates(folder: Path) -> Certificates:
    ca, other = make_ca(folder, "ca"), make_ca(folder, "other_ca")
    return Certificates(
        ca=ca,
        server=make_cert(folder, "teacher_server", ca, "serverAuth"),
        client=make_cert(folder, "router_client", ca, "clientAuth"),
        other_ca=other,
        stranger=make_cert(folder, "stranger_client", other, "clientAuth"),
    )
