"""Locate the data files shipped in ``r2et_fast/datasets/data/`` and check their SHA-256.

Every file is checked against the digest recorded below (the same digests are in ``data/SHA256SUMS``,
in ``sha256sum`` format) before it is parsed, so a truncated or corrupted installation fails loudly
with the file's name instead of producing a silently different data set.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

#: SHA-256 of each shipped file, as copied from the sources listed in DATA_NOTICE.md.
SHA256: dict[str, str] = {
    "adult.data.gz": "81c14f24b919c178d21a5ba46de02ed376e7cccee4d0d5d06af45ea4a7fc29bf",
    "adult.test.gz": "1ab9f879f1249af35ea926e579f3ed5883747a661501527615d566b002476e08",
    "bank-uci.csv.gz": "b0b8f7507192b58bdd963c33351d1f90f27704211ec30ef13b599b3347246ec9",
    "bzr.sdf.gz": "f7272d3dc8c26574d43bafeb1c76390ad76ff1bc2032e7a73af5ad59001a8d8e",
    "compas-scores-two-years.csv.gz": "aae6734f8efb7e337b07df86708547d00e42a86e9ab3e1ab434d098863cdb806",
    "mnist_10k.npz": "0217e13bd0668deb198aa7d305edbf0331eb89f8a6e7dd226e03d1aa3a9bd4ef",
}

_REINSTALL = "reinstall the package (or pass data_dir= a folder holding an intact copy)"


def _directory(data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is None:
        return DATA_DIR
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path or None, got {type(data_dir).__name__}")
    return Path(data_dir)


def data_path(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the shipped data file ``name`` (in ``data_dir`` if given, else the package's folder).

    Raises ``ValueError`` for a name that is not a shipped file and ``FileNotFoundError`` (naming
    the file) when it is missing."""
    if name not in SHA256:
        raise ValueError(f"unknown data file {name!r}; the shipped files are {sorted(SHA256)}")
    path = _directory(data_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data file {name} is missing; {_REINSTALL}")
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(name: str, data_dir: str | os.PathLike[str] | None = None) -> bytes:
    """The bytes of data file ``name`` after checking their SHA-256 (one read, so the bytes that were
    checked are the bytes that get parsed)."""
    path = data_path(name, data_dir)
    data = path.read_bytes()
    got = sha256_of(data)
    expected = SHA256[name]
    if got != expected:
        raise ValueError(f"{path}: SHA-256 mismatch (expected {expected}, got {got}); "
                         f"the file {name} is corrupted — {_REINSTALL}")
    return data


def verify(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Check data file ``name`` against its recorded SHA-256 and return its path.

    ``FileNotFoundError`` when missing, ``ValueError`` on a digest mismatch; both name the file."""
    read_verified(name, data_dir)
    return data_path(name, data_dir)


def verify_all(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Verify every shipped file; returns name → path."""
    return {name: verify(name, data_dir) for name in SHA256}
