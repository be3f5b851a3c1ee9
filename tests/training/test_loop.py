"""Gradient accumulation weights: each optimizer step follows the mean loss of its window."""

from __future__ import annotations

import pytest

from inpars.training.loop import accumulation_weights


def test_weights_cover_short_last_windows_and_micro_batches() -> None:
    assert accumulation_weights([4, 4, 4, 4, 4], 2) == pytest.approx([0.5, 0.5, 0.5, 0.5, 1.0])
    assert accumulation_weights([4, 4, 2], 3) == pytest.approx([0.4, 0.4, 0.2])
    assert accumulation_weights([3], 1) == [1.0]
    assert accumulation_weights([], 4) == []
    with pytest.raises(ValueError, match="grad_accumulation"):
        accumulation_weights([1], 0)


@pytest.mark.parametrize(("sizes", "accumulation"), [([4, 4, 4, 4, 2], 2), ([3, 3, 3], 2), ([5, 1], 4)])
def test_accumulated_gradient_equals_the_window_mean_loss_gradient(
    sizes: list[int], accumulation: int
) -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    data = torch.randn(sum(sizes), 3)
    labels = (torch.rand(sum(sizes)) > 0.5).float()

    def loss_of(rows: slice) -> torch.Tensor:
        logits = model(data[rows]).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[rows])

    weights = accumulation_weights(sizes, accumulation)
    starts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    for first in range(0, len(sizes), accumulation):  # one optimizer step per window
        last = min(first + accumulation, len(sizes))
        model.zero_grad()
        for index in range(first, last):  # what the trainers do, micro-batch by micro-batch
            (loss_of(slice(starts[index], starts[index + 1])) * weights[index]).backward()
        accumulated = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad()
        loss_of(slice(starts[first], starts[last])).backward()  # the window as one batch
        whole = [p.grad for p in model.parameters() if p.grad is not None]
        for got, expected in zip(accumulated, whole, strict=True):
            assert torch.allclose(got, expected, atol=1e-6)
