"""The report's scatter figures name every point without labels drawn over each other: methods (or
constraint handlers) of the same scores are told apart by a legend."""

from __future__ import annotations

import itertools

from matplotlib.text import Text

from r2et_fast.experiments import _report
from r2et_fast.train import METHOD_LABELS


def _label_boxes(fig, labels):
    """Window extents of the drawn texts that are one of ``labels`` (annotations or legend)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text() in labels]
    return {t.get_text(): t.get_window_extent(renderer) for t in texts}, len(texts)


def _assert_apart(boxes):
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"


def test_tradeoff_labels_do_not_overlap():
    plt = _report._plt()
    # every method at nearly the same point: the case where labels at the points pile up
    stat = {"mean": 0.8, "std": 0.0}
    table = {m: {"cauc": {"mean": 0.8 + 1e-4 * i, "std": 0.0}, "precision_at_k_erattack": stat}
             for i, m in enumerate(METHOD_LABELS)}
    fig = _report.tradeoff_figure(plt, "toy", {"table1": table})
    labels = set(METHOD_LABELS.values())
    boxes, count = _label_boxes(fig, labels)
    plt.close(fig)
    assert set(boxes) == labels and count == len(labels)  # each method named once
    _assert_apart(boxes)


def test_constrained_labels_do_not_overlap(tmp_path):
    plt = _report._plt()
    zero, half = {"mean": 0.0, "std": 0.0}, {"mean": 0.5, "std": 0.0}
    rows = [{"constraint": c, "sensitivity": zero, "precision_at_k": half}
            for c in ("none", "early_stop", "gda", "hedge", "qp", "fixed")]
    captured = []
    save = _report._save
    try:
        _report._save = lambda fig, path, dpi=110: captured.append(fig) or path.name
        _report._constrained(plt, "toy", rows, tmp_path)
    finally:
        _report._save = save
    boxes, count = _label_boxes(captured[0], {r["constraint"] for r in rows})
    plt.close(captured[0])
    assert count == len(rows)
    _assert_apart(boxes)
