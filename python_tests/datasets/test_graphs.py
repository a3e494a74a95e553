"""Graph data: synthetic connectomes, the shipped BZR molecules, brain-network files, balanced pairs."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from r2et_fast.datasets import _integrity
from r2et_fast.datasets.graphs import (
    BOND_WEIGHTS,
    GraphPairSplit,
    graph_pairs,
    load_brain_networks,
    load_bzr,
    load_bzr_molecules,
    load_graph_pairs,
    make_connectomes,
    parse_sdf,
)
from r2et_fast.datasets.split import Split
from r2et_fast.experiments._specs import get_spec
from r2et_fast.graph_encoding import adjacency_to_triangle

scipy_io = pytest.importorskip("scipy.io")


def _small(seed=0, **kw):
    args = {"n_graphs": 30, "n_nodes": 12, "n_communities": 3, "seed": seed, **kw}
    return make_connectomes(**args)


# ---- synthetic connectomes ------------------------------------------------------------------------

def test_connectomes_default_shape_and_validity():
    adj, labels = make_connectomes()
    assert adj.shape == (200, 82, 82) and adj.dtype == torch.float32
    assert labels.shape == (200,) and labels.dtype == torch.int64
    assert int(labels.sum()) == 100
    assert torch.equal(adj, adj.transpose(1, 2))
    assert torch.all(adj.diagonal(dim1=1, dim2=2) == 0)
    assert adj.min() >= 0 and adj.max() <= 1


def test_connectomes_seeded_and_class_dependent():
    a1, y1 = _small(seed=5)
    a2, y2 = _small(seed=5)
    a3, _ = _small(seed=6)
    assert torch.equal(a1, a2) and torch.equal(y1, y2)
    assert not torch.equal(a1, a3)
    adj, y = make_connectomes(n_graphs=200, n_nodes=24, n_communities=4, seed=0, dtype=torch.float64)
    diff = adj[y == 1].mean(0) - adj[y == 0].mean(0)
    assert diff.max() > 0.08 and diff.min() < -0.08  # strengthened and weakened blocks
    null, y0 = make_connectomes(n_graphs=200, n_nodes=24, n_communities=4, seed=0, signal=0.0,
                                dtype=torch.float64)
    assert (null[y0 == 1].mean(0) - null[y0 == 0].mean(0)).abs().max() < 0.06


@pytest.mark.parametrize("kwargs,name", [({"n_graphs": 1}, "n_graphs"), ({"n_nodes": 3}, "n_nodes"),
                                         ({"n_communities": 7}, "n_communities"), ({"seed": -1}, "seed"),
                                         ({"signal": 2.0}, "signal"), ({"dtype": torch.int64}, "dtype"),
                                         ({"n_graphs": 2.5}, "n_graphs")])
def test_connectomes_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _small(**kwargs)


# ---- BZR ------------------------------------------------------------------------------------------

def test_bzr_counts_and_weights():
    adj, labels = load_bzr()
    assert adj.shape == (163, 29, 29) and labels.shape == (163,)
    assert int((labels == 1).sum()) == 121 and int((labels == 0).sum()) == 42
    assert torch.equal(adj, adj.transpose(1, 2))
    assert torch.all(adj.diagonal(dim1=1, dim2=2) == 0)
    allowed = torch.tensor([0.0] + sorted(BOND_WEIGHTS.values()))
    assert torch.isin(adj.unique(), allowed.to(adj.dtype)).all()
    mols = load_bzr_molecules()
    sizes = [m.n_atoms for m in mols]
    assert len(mols) == 163 and min(sizes) == 13 and max(sizes) == 29
    for g in (0, 50, 162):
        assert int((adjacency_to_triangle(adj[g]) > 0).sum()) == len(mols[g].bonds)
        assert torch.all(adj[g, mols[g].n_atoms:] == 0)  # padding nodes are isolated
    assert mols[0].name == "Adinazolam" and mols[0].properties["ACTIVITY"] == "6.87" and labels[0] == 0
    assert mols[0].atoms[-1] == "Cl"


def test_bzr_margin_leaves_out_the_band_around_the_cut():
    # margin 0 is the plain cut; margin 0.5 around the median 7.8 is the bzr experiment's task
    adj0, lab0 = load_bzr(margin=0.0)
    adj, lab = load_bzr()
    assert torch.equal(adj0, adj) and torch.equal(lab0, lab)
    pic50 = torch.tensor([float(m.properties["ACTIVITY"]) for m in load_bzr_molecules()], dtype=torch.float64)
    assert float(pic50.median()) == 7.8
    adj, lab = load_bzr(activity_cut=7.8, margin=0.5)
    keep = (pic50 < 7.3) | (pic50 >= 8.3)
    assert adj.shape == (102, 29, 29) and int(keep.sum()) == 102  # N stays the largest of all 163
    assert int(lab.sum()) == 48 and torch.equal(lab, (pic50[keep] >= 8.3).long())
    assert torch.equal(adj, load_bzr()[0][keep])
    with pytest.raises(ValueError, match="margin"):
        load_bzr(margin=-0.1)
    with pytest.raises(ValueError, match="both classes"):
        load_bzr(activity_cut=7.0, margin=2.5)  # 7.0 +- 2.5 leaves no molecule of pIC50 >= 9.5
    split = get_spec("bzr").load(0)  # the experiment's pairs come from the 102 molecules
    graphs = torch.cat([split.graphs_train, split.graphs_val, split.graphs_test])
    assert split.n_nodes == 29 and len(graphs) == 102 and len(graphs.unique()) == 102


def test_bzr_options_and_errors(tmp_path):
    adj, labels = load_bzr(activity_cut=6.0, n_nodes=32, dtype=torch.float64)
    assert adj.shape == (163, 32, 32) and adj.dtype == torch.float64 and labels.sum() > 121
    with pytest.raises(ValueError, match="n_nodes"):
        load_bzr(n_nodes=20)
    with pytest.raises(ValueError, match="activity_cut"):
        load_bzr(activity_cut="7")
    shutil.copy(_integrity.data_path("bzr.sdf.gz"), tmp_path / "bzr.sdf.gz")
    assert load_bzr(data_dir=tmp_path)[0].shape == (163, 29, 29)
    (tmp_path / "bzr.sdf.gz").write_bytes(gzip.compress(b"broken"))
    with pytest.raises(ValueError, match="bzr.sdf.gz.*SHA-256"):
        load_bzr(data_dir=tmp_path)
    (tmp_path / "bzr.sdf.gz").unlink()
    with pytest.raises(FileNotFoundError, match="bzr.sdf.gz"):
        load_bzr(data_dir=tmp_path)


def _molfile(counts="  3  2  0  0  0  0  0  0  0  0999 V2000", bonds=("  1  2  1  0", "  2  3  4  0"),
             end=True, fields=(("ACTIVITY", "7.5"),)):
    atoms = ["    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0",
             "    0.0000    0.0000    0.0000 N   0  0  0  0  0  0  0  0  0  0  0  0",
             "    0.0000    0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0"]
    lines = ["mol", "  prog", "", counts, *atoms, *bonds]
    if end:
        lines.append("M  END")
    for k, v in fields:
        lines += [f">  <{k}>  (1) ", v, ""]
    return "\n".join(lines) + "\n$$$$\n"


def test_parse_sdf_small_record():
    (mol,) = parse_sdf(_molfile())
    assert mol.atoms == ("C", "N", "O") and mol.bonds == ((0, 1, 1), (1, 2, 4))
    assert mol.properties == {"ACTIVITY": "7.5"}
    assert len(parse_sdf(_molfile() + _molfile())) == 2


@pytest.mark.parametrize("text,match", [
    (_molfile(counts="  3  2  0  0  0  0  0  0  0  0999 V3000"), "V3000"),
    (_molfile(counts="abcdef"), "counts line"),
    (_molfile(bonds=("  1  2  8  0", "  2  3  1  0")), "bond type 8"),
    (_molfile(bonds=("  1  9  1  0", "  2  3  1  0")), "out of range"),
    (_molfile(bonds=("  1  2  1  0", "  2  1  2  0")), "duplicate bond"),
    (_molfile(end=False), "M  END"),
    (_molfile().replace("$$$$\n", ""), "not terminated"),
    ("mol\n\n\n  5  0  0\n$$$$\n", "truncated"),
    ("", "no SDF records"),
])
def test_parse_sdf_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_sdf(text, "test.sdf")


def test_parse_sdf_error_names_record_and_line():
    with pytest.raises(ValueError, match=r"test.sdf: record 2 \(line 22\)"):
        parse_sdf(_molfile() + _molfile(bonds=("  1  2  9  0", "  2  3  1  0")), "test.sdf")


# ---- brain-network files --------------------------------------------------------------------------

def _brain(g=6, n=5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(g, n, n))
    a = (a + a.transpose(0, 2, 1)) / 2
    labels = np.array([1, -1] * (g // 2))
    return a, labels


def test_mat_layout_nng_with_plus_minus_labels(tmp_path):
    a, labels = _brain()
    path = tmp_path / "bp.mat"
    scipy_io.savemat(path, {"dti": np.moveaxis(a, 0, -1), "fmri": np.moveaxis(2 * a, 0, -1),
                            "label": labels.reshape(-1, 1)})
    adj, y = load_brain_networks(path)
    assert adj.shape == (6, 5, 5) and adj.dtype == torch.float32
    assert torch.equal(y, torch.tensor([1, 0] * 3))
    expected = np.abs(a)
    expected[:, range(5), range(5)] = 0
    expected /= expected.max()
    assert np.allclose(adj.numpy(), expected, atol=1e-6)
    assert torch.equal(adj, adj.transpose(1, 2)) and adj.max() == 1
    fmri, _ = load_brain_networks(path, adjacency_key="fmri", scale="graph", dtype=torch.float64)
    assert np.allclose(fmri.amax((1, 2)).numpy(), 1.0)


def test_mat_cell_array_and_npz(tmp_path):
    a, labels = _brain(g=4, n=3)
    cells = np.empty((4, 1), dtype=object)
    for i in range(4):
        cells[i, 0] = np.stack([a[i], 2 * a[i]], axis=-1)  # N x N x 2 views
    scipy_io.savemat(tmp_path / "ppmi.mat", {"X": cells, "label": (labels > 0).astype(float)})
    adj, y = load_brain_networks(tmp_path / "ppmi.mat", view=1)
    assert adj.shape == (4, 3, 3) and torch.equal(y, torch.tensor([1, 0, 1, 0]))
    with pytest.raises(ValueError, match="view=2 is out of range"):
        load_brain_networks(tmp_path / "ppmi.mat", view=2)
    np.savez(tmp_path / "g.npz", adjacency=np.abs(a), labels=np.array([0, 1, 0, 1]))
    adj2, y2 = load_brain_networks(tmp_path / "g.npz")
    assert adj2.shape == (4, 3, 3) and torch.equal(y2, torch.tensor([0, 1, 0, 1]))


def test_brain_asymmetric_matrices_are_symmetrised(tmp_path):
    a = np.zeros((2, 3, 3))
    a[:, 0, 1] = 1.0
    np.savez(tmp_path / "g.npz", adjacency=a, labels=np.array([0, 1]))
    adj, _ = load_brain_networks(tmp_path / "g.npz")
    assert adj[0, 0, 1] == adj[0, 1, 0] == 1.0  # (A + A^T)/2 = 0.5, then divided by the max


def test_brain_errors(tmp_path):
    a, labels = _brain()
    with pytest.raises(FileNotFoundError, match="nope.mat"):
        load_brain_networks(tmp_path / "nope.mat")
    scipy_io.savemat(tmp_path / "nokey.mat", {"weights": a, "label": labels})
    with pytest.raises(ValueError, match=r"nokey.mat.*keys found: \['label', 'weights'\]"):
        load_brain_networks(tmp_path / "nokey.mat")
    assert load_brain_networks(tmp_path / "nokey.mat", adjacency_key="weights")[0].shape == (6, 5, 5)
    scipy_io.savemat(tmp_path / "nolab.mat", {"dti": a})
    with pytest.raises(ValueError, match="no label array"):
        load_brain_networks(tmp_path / "nolab.mat")
    scipy_io.savemat(tmp_path / "rect.mat", {"dti": np.zeros((4, 5, 6)), "label": labels})
    with pytest.raises(ValueError, match="rect.mat.*square"):
        load_brain_networks(tmp_path / "rect.mat")
    scipy_io.savemat(tmp_path / "count.mat", {"dti": np.moveaxis(a, 0, -1), "label": labels[:4]})
    with pytest.raises(ValueError, match="6 adjacency matrices .* but 4 labels"):
        load_brain_networks(tmp_path / "count.mat")
    bad = a.copy()
    bad[2, 0, 1] = np.nan
    np.savez(tmp_path / "nan.npz", adjacency=bad, labels=labels)
    with pytest.raises(ValueError, match="nan.npz.*NaN.*first: graph 2"):
        load_brain_networks(tmp_path / "nan.npz")
    np.savez(tmp_path / "one.npz", adjacency=a, labels=np.ones(6))
    with pytest.raises(ValueError, match="single class"):
        load_brain_networks(tmp_path / "one.npz")
    np.savez(tmp_path / "frac.npz", adjacency=a, labels=np.linspace(0, 1, 6))
    with pytest.raises(ValueError, match="integer class ids"):
        load_brain_networks(tmp_path / "frac.npz")
    np.savez(tmp_path / "flat.npz", adjacency=a[0], labels=labels)
    with pytest.raises(ValueError, match="single matrix"):
        load_brain_networks(tmp_path / "flat.npz")
    (tmp_path / "junk.mat").write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(ValueError, match="junk.mat: cannot read"):
        load_brain_networks(tmp_path / "junk.mat")
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="junk.npz: cannot read"):
        load_brain_networks(tmp_path / "junk.npz")
    (tmp_path / "g.csv").write_text("1,2")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_brain_networks(tmp_path / "g.csv")
    with pytest.raises(ValueError, match="scale"):
        load_brain_networks(tmp_path / "nokey.mat", scale="max")


# ---- pairs ----------------------------------------------------------------------------------------

def test_graph_pairs_structure_balance_and_disjointness():
    adj, labels = _small(n_graphs=40)
    split = graph_pairs(adj, labels, n_pairs=100, seed=1)
    assert isinstance(split, Split) and isinstance(split, GraphPairSplit)
    m = 12 * 11 // 2
    assert split.x_train.shape == (100, 2, m) and split.n_nodes == 12 and split.n_features == 2 * m
    assert split.x_val.shape == (33, 2, m) and split.x_test.shape == (33, 2, m)  # 100 * 0.2 / 0.6
    triu = adjacency_to_triangle(adj)
    graph_sets = []
    for part in ("train", "val", "test"):
        x, y, pairs, graphs = (getattr(split, f"{k}_{part}") for k in ("x", "y", "pairs", "graphs"))
        assert int(y.sum()) == len(y) // 2  # balanced: floor half same-class
        assert torch.equal(y, (labels[pairs[:, 0]] == labels[pairs[:, 1]]).long())
        assert torch.all(pairs[:, 0] != pairs[:, 1])
        assert torch.isin(pairs, graphs).all()
        assert torch.equal(x, triu[pairs])
        assert set(labels[graphs].tolist()) == {0, 1}
        graph_sets.append(set(graphs.tolist()))
    assert sum(len(s) for s in graph_sets) == 40 and len(set.union(*graph_sets)) == 40
    assert len(split.graphs_val) == len(split.graphs_test) == 8  # 20 % of each class of 20
    # both orders of a pair occur (the position carries no label information)
    same = split.pairs_train[split.y_train == 1]
    assert (labels[same[:, 0]] == labels[same[:, 1]]).all()
    diff = split.pairs_train[split.y_train == 0]
    assert (labels[diff[:, 0]] == 0).any() and (labels[diff[:, 0]] == 1).any()


def test_graph_pairs_seeded_and_options():
    adj, labels = _small()
    a = graph_pairs(adj, labels, n_pairs=20, seed=3)
    b = graph_pairs(adj.numpy(), labels.numpy(), n_pairs=20, seed=3)
    c = graph_pairs(adj, labels, n_pairs=20, seed=4)
    for f in ("x_train", "y_train", "x_val", "y_test", "pairs_test"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.pairs_train, c.pairs_train)
    d = graph_pairs(adj, labels, n_pairs=21, val_fraction=0.0, n_eval_pairs=6, dtype=torch.float64)
    assert d.x_train.shape[0] == 21 and int(d.y_train.sum()) == 10 and d.x_train.dtype == torch.float64
    assert d.x_val.shape == (0, 2, 66) and d.y_val.shape == (0,) and d.x_test.shape[0] == 6
    multi = graph_pairs(adj, torch.arange(30) % 3, n_pairs=30, seed=0)
    assert int(multi.y_train.sum()) == 15


@pytest.mark.parametrize("kwargs,match", [
    ({"n_pairs": 1}, "n_pairs"), ({"seed": 1.5}, "seed"), ({"val_fraction": 1.2}, "val_fraction"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction"),
    ({"n_eval_pairs": -1}, "n_eval_pairs"), ({"dtype": torch.int32}, "dtype"),
])
def test_graph_pairs_bad_arguments(kwargs, match):
    adj, labels = _small()
    with pytest.raises(ValueError, match=match):
        graph_pairs(adj, labels, **{"n_pairs": 10, **kwargs})


def test_graph_pairs_bad_data():
    adj, labels = _small()
    with pytest.raises(ValueError, match="adjacency must have shape"):
        graph_pairs(adj[:, :5], labels)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        graph_pairs(adj * 2, labels)
    asym = adj.clone()
    asym[0, 0, 1] = 0.99
    asym[0, 1, 0] = 0.01
    with pytest.raises(ValueError, match="symmetric"):
        graph_pairs(asym, labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        graph_pairs(adj, labels[:5])
    with pytest.raises(ValueError, match="integer"):
        graph_pairs(adj, labels.float())
    with pytest.raises(ValueError, match="two classes"):
        graph_pairs(adj, torch.zeros(30, dtype=torch.long))
    with pytest.raises(ValueError, match="adjacency must be a torch.Tensor"):
        graph_pairs([[0.0]], labels)
    tiny_labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="val split"):  # one graph per class in val: no same pair
        graph_pairs(adj[:8], tiny_labels, n_pairs=4, val_fraction=0.25, test_fraction=0.25)


def test_load_graph_pairs_sources(tmp_path):
    split, n = load_graph_pairs("connectomes", n_pairs=10, n_graphs=20, n_nodes=10, n_communities=2)
    assert n == 10 and split.x_train.shape == (10, 2, 45)
    split, n = load_graph_pairs("bzr", n_pairs=10, seed=2)
    assert n == 29 and split.x_train.shape == (10, 2, 406)
    assert len(split.graphs_train) + len(split.graphs_val) + len(split.graphs_test) == 163
    a, labels = _brain(g=10)
    np.savez(tmp_path / "b.npz", adjacency=a, labels=labels)
    split, n = load_graph_pairs("brain", n_pairs=6, path=tmp_path / "b.npz", val_fraction=0.0,
                                test_fraction=0.0)
    assert n == 5 and split.x_train.shape == (6, 2, 10) and split.x_val.shape[0] == 0
    with pytest.raises(ValueError, match="path is required"):
        load_graph_pairs("brain")
    with pytest.raises(ValueError, match="path is only used"):
        load_graph_pairs("bzr", path=tmp_path / "b.npz")
    with pytest.raises(ValueError, match="name must be one of"):
        load_graph_pairs("mutag")
