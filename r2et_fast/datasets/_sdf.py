"""A small V2000 SDF reader (no RDKit) and the shipped BZR ligands as weighted graphs."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import torch

from r2et_fast._validation import check_finite_real, check_float_dtype, check_int, check_nonnegative_float
from r2et_fast.datasets._integrity import read_verified

#: Edge weight of each V2000 bond type: order / 3 (aromatic counts as 1.5).
BOND_WEIGHTS = {1: 1.0 / 3.0, 2: 2.0 / 3.0, 3: 1.0, 4: 0.5}


@dataclass(frozen=True)
class Molecule:
    """One SDF record: atom symbols, bonds ``(i, j, type)`` with 0-based atoms, and data fields."""

    name: str
    atoms: tuple[str, ...]
    bonds: tuple[tuple[int, int, int], ...]
    properties: dict[str, str]

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


def _parse_record(lines: list[str], start: int, index: int, source: str) -> Molecule:
    def fail(offset: int, problem: str) -> ValueError:
        return ValueError(f"{source}: record {index + 1} (line {start + offset + 1}): {problem}")

    if len(lines) < 4:
        raise fail(0, f"truncated molfile header ({len(lines)} lines, need 4)")
    name = lines[0].strip()
    counts = lines[3]
    if "V3000" in counts:
        raise fail(3, "V3000 molfiles are not supported (only V2000)")
    try:
        n_atoms, n_bonds = int(counts[0:3]), int(counts[3:6])
    except ValueError:
        raise fail(3, f"bad counts line {counts!r} (expected atom and bond counts in columns 1-6)") from None
    if n_atoms < 1 or n_bonds < 0:
        raise fail(3, f"bad counts line {counts!r}: {n_atoms} atoms, {n_bonds} bonds")
    if len(lines) < 4 + n_atoms + n_bonds:
        raise fail(len(lines), f"truncated: the counts line announces {n_atoms} atoms and {n_bonds} bonds")
    atoms = []
    for a in range(n_atoms):
        line = lines[4 + a]
        symbol = line[31:34].strip()
        if not symbol or not symbol[0].isalpha():
            raise fail(4 + a, f"atom {a + 1}: no element symbol in columns 32-34 of {line!r}")
        atoms.append(symbol)
    bonds = []
    seen = set()
    for b in range(n_bonds):
        off = 4 + n_atoms + b
        line = lines[off]
        try:
            i, j, kind = int(line[0:3]), int(line[3:6]), int(line[6:9])
        except ValueError:
            raise fail(off, f"bond {b + 1}: bad bond line {line!r}") from None
        if not (1 <= i <= n_atoms and 1 <= j <= n_atoms) or i == j:
            raise fail(off, f"bond {b + 1}: atoms ({i}, {j}) out of range 1..{n_atoms} or a self-bond")
        if kind not in BOND_WEIGHTS:
            raise fail(off, f"bond {b + 1}: bond type {kind} not supported (1-3 single/double/triple, "
                            "4 aromatic; query bond types 5-8 are not)")
        key = (min(i, j), max(i, j))
        if key in seen:
            raise fail(off, f"bond {b + 1}: duplicate bond between atoms {i} and {j}")
        seen.add(key)
        bonds.append((i - 1, j - 1, kind))
    rest = lines[4 + n_atoms + n_bonds:]
    end = next((p for p, line in enumerate(rest) if line.startswith("M  END")), None)
    if end is None:
        raise fail(4 + n_atoms + n_bonds, "no 'M  END' line after the bond block")
    properties: dict[str, str] = {}
    p = end + 1
    while p < len(rest):
        line = rest[p]
        if line.startswith(">"):
            lo, hi = line.find("<"), line.find(">", line.find("<") + 1)
            if lo < 0 or hi < 0:
                raise fail(4 + n_atoms + n_bonds + p, f"bad data header {line!r} (expected '> <NAME>')")
            field = line[lo + 1:hi]
            values = []
            p += 1
            while p < len(rest) and rest[p].strip():
                values.append(rest[p].strip())
                p += 1
            properties[field] = "\n".join(values)
        p += 1
    return Molecule(name, tuple(atoms), tuple(bonds), properties)


def parse_sdf(text: str, source: str = "<sdf>") -> list[Molecule]:
    """Parse V2000 SDF text (records ending in ``$$$$``) into :class:`Molecule` objects.

    Errors are ``ValueError`` naming ``source``, the record and the line."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    molecules: list[Molecule] = []
    record: list[str] = []
    start = 0
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "$$$$":
            molecules.append(_parse_record(record, start, len(molecules), source))
            record, start = [], number + 1
        else:
            record.append(line)
    if any(line.strip() for line in record):
        raise ValueError(f"{source}: record {len(molecules) + 1} (line {start + 1}) is not terminated "
                         "by '$$$$' (truncated file?)")
    if not molecules:
        raise ValueError(f"{source}: no SDF records found")
    return molecules


def molecules_to_adjacency(molecules: list[Molecule], n_nodes: int | None = None,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Weighted adjacencies ``(G, N, N)`` of molecules (weights :data:`BOND_WEIGHTS`), padded with
    isolated nodes to ``n_nodes`` (default: the largest molecule)."""
    dtype = check_float_dtype(dtype)
    largest = max(m.n_atoms for m in molecules)
    n = largest if n_nodes is None else check_int(n_nodes, "n_nodes", 2)
    if n < largest:
        raise ValueError(f"n_nodes must be at least the largest molecule's atom count {largest}, got {n}")
    adj = torch.zeros(len(molecules), n, n, dtype=torch.float64)
    for g, mol in enumerate(molecules):
        for i, j, kind in mol.bonds:
            adj[g, i, j] = adj[g, j, i] = BOND_WEIGHTS[kind]
    return adj.to(dtype)


def load_bzr(activity_cut: float = 7.0, n_nodes: int | None = None, dtype: torch.dtype = torch.float32,
             data_dir: str | os.PathLike[str] | None = None,
             margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The BZR ligands as weighted graphs: ``(adjacency (G, N, N), labels (G,))``.

    Label 1 = active (``ACTIVITY`` pIC50 >= ``activity_cut + margin``), 0 = inactive (pIC50 <
    ``activity_cut - margin``); molecules in between are left out. With the default ``margin`` 0
    all 163 molecules are kept (121 actives, 42 inactives at the cut 7.0). ``margin`` 0.5 around
    the median 7.8 (the ``bzr`` experiment's task, docs/reproduction/images-graphs.md) keeps 102
    molecules, 48 of them active. ``N`` = 29 (the largest of all 163 molecules, whatever the margin
    leaves; molecules have 13-29 heavy atoms) unless ``n_nodes`` is larger. The file's SHA-256 is
    checked before parsing."""
    activity_cut = check_finite_real(activity_cut, "activity_cut")
    margin = check_nonnegative_float(margin, "margin")
    molecules = load_bzr_molecules(data_dir)
    activity = []
    for g, mol in enumerate(molecules):
        raw = mol.properties.get("ACTIVITY")
        try:
            activity.append(float(raw))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"bzr.sdf.gz: molecule {g + 1} ({mol.name!r}) has no numeric ACTIVITY field "
                             f"(got {raw!r})") from None
    pic50 = torch.tensor(activity, dtype=torch.float64)
    labels = (pic50 >= activity_cut + margin).to(torch.long)
    keep = (pic50 < activity_cut - margin) | (labels == 1)
    if int(labels[keep].sum()) in (0, int(keep.sum())):
        raise ValueError(f"activity_cut={activity_cut} with margin={margin} leaves "
                         f"{int(labels[keep].sum())} active and {int((labels[keep] == 0).sum())} inactive "
                         f"molecules; both classes are needed (pIC50 ranges over "
                         f"[{float(pic50.min())}, {float(pic50.max())}])")
    return molecules_to_adjacency(molecules, n_nodes, dtype)[keep], labels[keep]


def load_bzr_molecules(data_dir: str | os.PathLike[str] | None = None) -> list[Molecule]:
    """The parsed records of the shipped ``bzr.sdf.gz`` (SHA-256 checked)."""
    data = read_verified("bzr.sdf.gz", data_dir)
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"bzr.sdf.gz: cannot decompress/decode: {exc}") from None
    return parse_sdf(text, "bzr.sdf.gz")
