"""Tests of course_utils.train: does fit train, and do evaluate/predict report the right numbers?"""
import torch
from torch import nn

from course_utils.data import make_loader
from course_utils.train import History, evaluate, fit, predict


def _blobs(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    X = torch.randn(n, 2, generator=g) + 4 * y[:, None].float()  # (N, 2), two separable blobs
    return torch.utils.data.TensorDataset(X, y)


def test_fit_lowers_loss_and_reaches_high_accuracy():
    """Does fit train a linear classifier on separable blobs and record per-epoch history?"""
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    train_loader = make_loader(_blobs(), 32, shuffle=True)
    val_loader = make_loader(_blobs(seed=1), 64)
    history = fit(model, train_loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                  num_epochs=5, device=torch.device("cpu"), val_loader=val_loader, show_progress=False, verbose=False)
    assert history.epochs == [1, 2, 3, 4, 5]
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.95
    assert "5 epochs" in repr(history)


def test_evaluate_matches_hand_computation():
    """Does evaluate give the mean loss and accuracy one would compute by hand?"""
    model = nn.Linear(2, 2)
    ds = _blobs(50)
    result = evaluate(model, make_loader(ds, 7), nn.CrossEntropyLoss(), torch.device("cpu"))
    X, y = ds.tensors
    with torch.no_grad():
        logits = model(X)
    assert abs(result["loss"] - nn.functional.cross_entropy(logits, y).item()) < 1e-6
    assert abs(result["accuracy"] - (logits.argmax(1) == y).float().mean().item()) < 1e-9
    logits2, y2 = predict(model, make_loader(ds, 7), torch.device("cpu"))
    assert torch.allclose(logits2, logits) and torch.equal(y2, y)


def test_history_plot_draws_two_panels():
    """Does History.plot draw loss and accuracy?"""
    import matplotlib

    matplotlib.use("Agg")
    h = History([1, 2], [1.0, 0.5], [0.5, 0.8], [1.1, 0.6], [0.4, 0.7], [0.1, 0.1])
    fig = h.plot("demo")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "Loss"
