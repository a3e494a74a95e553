"""Prediction metrics: ROC AUC of a binary classifier (cAUC on clean inputs, aAUC on attacked ones)."""

from __future__ import annotations

import torch

from r2et_fast._device import compute_device, to
from r2et_fast.reference.ranking import average_ranks


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties counted half) of ``scores`` for ``labels``.

    NaN when only one class is present.
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 1:
        raise ValueError("scores must be a 1-D tensor")
    if not isinstance(labels, torch.Tensor) or labels.shape != scores.shape:
        raise ValueError(f"labels must be a tensor of shape {tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores contains NaN or Inf")
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores.detach().double()[None])[0]
    u = ranks[positive].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


@torch.no_grad()
def prediction_auc(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096, *,
                   device=None) -> float:
    """ROC AUC of P(class 1 | x) under ``model`` (logits (B, 2), or (B, 1) for a single logit).

    ``device``: where the model runs (default its own device, else that of ``x``); each batch of
    ``x`` moves there, so data may stay on the CPU for a model on a GPU.

    With C > 2 classes, the macro one-vs-rest AUC: the mean over the classes present in ``y`` of
    the AUC of P(class c | x) for "label == c" (for C = 2 this is the binary AUC itself).
    """
    where = compute_device(device, model, x)
    outs = [model(to(x[i:i + batch_size], where)) for i in range(0, len(x), batch_size)]
    logits = torch.cat(outs)
    y = to(y, logits.device)
    if logits.shape[1] <= 2:
        score = logits[:, 0] if logits.shape[1] == 1 else torch.softmax(logits, dim=1)[:, 1]
        return roc_auc(score, y)
    probs = torch.softmax(logits, dim=1)
    aucs = [roc_auc(probs[:, c], (y == c).long()) for c in range(logits.shape[1])]
    present = [a for a in aucs if a == a]  # NaN: the class is absent from y (or is all of it)
    return sum(present) / len(present) if present else float("nan")
