"""Two processes (gloo on the CPU, loopback) reproduce one process with the same total batch:
the loss trajectory of supervised and u2pl runs under torchrun, and the contrastive gradient."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from noisyseg.train.checkpoint import load_checkpoint
from noisyseg.train.semi.contrastive import ContrastConfig, U2PLContrast
from noisyseg.train.semi.distributed import Dist
from conftest import assert_same_checkpoints

TINY_CLI = ["--model", "deeplabv3plus", "-p", "width=8", "-p", "depth=1,1,1,1", "-p", "feature_dim=16"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "OMP_NUM_THREADS": "1",
            "MASTER_ADDR": "127.0.0.1", "NOISYSEG_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _run(args, processes: int, timeout: int = 300):
    if processes == 1:
        command = [sys.executable, "-m", "noisyseg", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
                   "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "noisyseg", *args]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["supervised", "u2pl"])
def test_two_processes_give_the_one_process_loss_trajectory(shapes, tmp_path, method):
    args = ["train", str(shapes), "--split", "strong", "--method", method, *TINY_CLI, "--epochs", "2",
            "--crop-size", "32", "--device", "cpu", "--seed", "3"]
    if method == "u2pl":
        args += ["--unlabelled", "weak"]
    # supervised: --lr-scaling linear states the rate for one process's batch (x 2 processes)
    lr_one, lr_two = (["--lr", "0.01"], ["--lr", "0.005", "--lr-scaling", "linear"]) if method == "supervised" else ([], [])
    _run(args + ["--batch-size", "4", "--out", str(tmp_path / "one")] + lr_one, 1)
    _run(args + ["--batch-size", "2", "--out", str(tmp_path / "two")] + lr_two, 2)
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    assert two["world_size"] == 2 and one["global_batch"] == two["global_batch"] and one["lr"] == two["lr"]
    assert len(one["loss_per_step"]) == len(two["loss_per_step"]) == 2 * one["steps_per_epoch"]
    torch.testing.assert_close(torch.tensor(two["loss_per_step"]), torch.tensor(one["loss_per_step"]),
                               rtol=1e-4, atol=1e-5)
    for name, values in one["terms_per_epoch"].items():
        torch.testing.assert_close(torch.tensor([v if v is not None else 0.0 for v in two["terms_per_epoch"][name]]),
                                   torch.tensor([v if v is not None else 0.0 for v in values]), rtol=1e-4, atol=1e-5)
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert_same_checkpoints(a, b, method, rtol=1e-3, atol=1e-4)
    if method == "u2pl":
        assert one["terms_per_epoch"]["c"][1] > 0 and int(a["bank"]["size"].sum()) > 0


def _batch(seed: int = 0):
    """A global batch for the contrastive term: 4 labelled then 4 unlabelled rows, 6 x 6 grid."""
    g = torch.Generator().manual_seed(seed)
    B, C, D, h, w = 8, 4, 5, 6, 6
    probs = torch.softmax(torch.randn(B, C, h, w, generator=g) * 2, 1)
    labels = probs.argmax(1)
    labels[:4, 0] = (labels[:4, 0] + 1) % C            # some labelled pixels disagree with the teacher
    labels[4:][torch.rand(4, h, w, generator=g) < 0.3] = 255
    unreliable = (labels == 255) & (torch.arange(B) >= 4).view(B, 1, 1)
    return (torch.randn(B, D, h, w, generator=g), torch.randn(B, D, h, w, generator=g), probs, labels,
            torch.arange(B) < 4, unreliable)


def _contrast_loss(rows, dist: Dist):
    student, teacher, probs, labels, labelled, unreliable = (t[rows] for t in _batch())
    student = student.clone().requires_grad_(True)
    contrast = U2PLContrast(4, 5, torch.device("cpu"), ContrastConfig(anchors=16, negatives=7, capacity=40))
    loss = torch.zeros(())
    for step in range(2):  # the second step draws from a bank filled by both steps' keys
        part, _ = contrast(student, teacher, probs, labels, labelled, unreliable,
                           torch.Generator().manual_seed(step), dist)
        loss = loss + part
    loss.backward()
    return loss.detach(), student.grad, contrast.bank.state_dict()


def _worker(rank: int, port: int, out: str):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        # rank r holds labelled rows 2r, 2r + 1 and unlabelled rows 4 + 2r, 5 + 2r
        rows = torch.tensor([2 * rank, 2 * rank + 1, 4 + 2 * rank, 5 + 2 * rank])
        loss, grad, bank = _contrast_loss(rows, Dist(rank, 2, torch.device("cpu")))
        torch.save({"loss": loss, "grad": grad, "bank": bank, "rows": rows}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_contrastive_gradient_is_equal_on_one_and_two_processes(tmp_path):
    loss, grad, bank = _contrast_loss(torch.arange(8), Dist())
    assert float(loss) > 0 and int(bank["size"].sum()) > 0
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    # DDP averages gradients over ranks: rank r's share / 2 is the one-process gradient of its rows
    torch.testing.assert_close((parts[0]["loss"] + parts[1]["loss"]) / 2, loss)
    for p in parts:
        torch.testing.assert_close(p["grad"] / 2, grad[p["rows"]], rtol=1e-5, atol=1e-7)
        for key in bank:
            torch.testing.assert_close(p["bank"][key], bank[key])
