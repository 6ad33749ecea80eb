import collections
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import torch

import noisyseg.ops.memory_bank as mb
from noisyseg.ops import MemoryBank
from conftest import needs_kernel as kernel_marker

ROOT = pathlib.Path(__file__).resolve().parents[2]
needs_kernel = kernel_marker("memory_bank_push")
IMPLS = ["reference", pytest.param("kernel", marks=needs_kernel)]


@pytest.fixture(params=IMPLS)
def impl(request, monkeypatch):
    if request.param == "reference":
        monkeypatch.setattr(mb, "has_op", lambda name: False)
    return request.param


def random_pushes(num_classes, capacity, steps, dim=3, seed=0):
    """Batches of keys whose first feature is a unique id, labels including ignored ones."""
    g = torch.Generator().manual_seed(seed)
    next_id = 0
    for _ in range(steps):
        m = int(torch.randint(0, 3 * capacity * num_classes // 2, (1,), generator=g))
        keys = torch.randn(m, dim, generator=g)
        keys[:, 0] = torch.arange(next_id, next_id + m, dtype=torch.float32)
        next_id += m
        labels = torch.randint(-1, num_classes + 1, (m,), generator=g)
        labels[labels == num_classes] = 255
        yield keys, labels


class TestPush:
    @pytest.mark.parametrize("num_classes,capacity", [(1, 1), (3, 5), (5, 17)])
    def test_smoke_against_deques(self, impl, num_classes, capacity):
        bank = MemoryBank(num_classes, capacity, 3)
        queues = [collections.deque(maxlen=capacity) for _ in range(num_classes)]
        for keys, labels in random_pushes(num_classes, capacity, steps=12):
            bank.push(keys, labels)
            for key, label in zip(keys, labels.tolist()):
                if 0 <= label < num_classes:
                    queues[label].append(key)
            for c, q in enumerate(queues):
                want = torch.stack(list(q)) if q else torch.zeros(0, 3)
                assert torch.equal(bank.keys(c), want)
            assert bank.sizes().tolist() == [len(q) for q in queues]

    @needs_kernel
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
    def test_kernel_matches_reference(self, dtype):
        state = [(torch.zeros(4, 9, 5, dtype=dtype), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))
                 for _ in range(2)]
        for keys, labels in random_pushes(4, 9, steps=20, dim=5, seed=1):
            keys = keys.to(dtype)
            torch.ops.noisyseg.memory_bank_push(*state[0], keys, labels)
            mb.memory_bank_push_reference(*state[1], keys, labels)
            for a, b in zip(*state):
                assert torch.equal(a, b)

    @needs_kernel
    def test_non_contiguous_keys_and_many_threads_worth(self):
        bank_a, bank_b = MemoryBank(7, 300, 8), MemoryBank(7, 300, 8)
        keys = torch.randn(8, 5000).t()  # non-contiguous
        labels = torch.randint(0, 9, (10000,))[::2]
        bank_a.push(keys, labels)
        mb.memory_bank_push_reference(bank_b.bank, bank_b.head, bank_b.size, keys.contiguous(), labels.contiguous())
        assert torch.equal(bank_a.bank, bank_b.bank) and torch.equal(bank_a.head, bank_b.head)

    def test_cardinality(self, impl):
        bank = MemoryBank(3, 4, 2)
        bank.push(torch.arange(14.0).view(7, 2), torch.tensor([0, 0, 2, 255, 0, -1, 0]))
        assert bank.sizes().tolist() == [4, 0, 1]
        bank.push(torch.arange(12.0).view(6, 2) + 100, torch.full((6,), 0))  # more than capacity: newest 4
        assert bank.keys(0)[:, 0].tolist() == [104.0, 106.0, 108.0, 110.0]
        bank.push(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
        assert bank.sizes().tolist() == [4, 0, 1]

    def test_exception(self, impl):
        bank = MemoryBank(3, 4, 2)
        with pytest.raises(ValueError, match=r"keys must be \[M, 2\]"):
            bank.push(torch.zeros(5, 3), torch.zeros(5, dtype=torch.long))
        with pytest.raises(ValueError, match=r"labels must be \[5\]"):
            bank.push(torch.zeros(5, 2), torch.zeros(4, dtype=torch.long))

    @needs_kernel
    def test_exception_messages_from_kernel(self):
        op = torch.ops.noisyseg.memory_bank_push
        bank, head, size = torch.zeros(3, 4, 2), torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
        with pytest.raises(RuntimeError, match="memory_bank_push: keys must have the bank's dtype"):
            op(bank, head, size, torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.long))
        with pytest.raises(RuntimeError, match=r"memory_bank_push: labels must be int64 \[M\]"):
            op(bank, head, size, torch.zeros(2, 2), torch.zeros(2, dtype=torch.int32))
        with pytest.raises(RuntimeError, match=r"memory_bank_push: head must be contiguous int64 \[C\]"):
            op(bank, head[:2], size, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
        with pytest.raises(RuntimeError, match=r"memory_bank_push: bank must be \[C, capacity, D\]"):
            op(bank[0], head, size, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))


class TestSample:
    def test_draws_only_stored_keys_uniformly(self, impl):
        bank = MemoryBank(3, 8, 2)
        bank.push(torch.arange(20.0).repeat_interleave(2).view(20, 2), torch.tensor([0] * 12 + [2] * 4 + [255] * 4))
        g = torch.Generator().manual_seed(0)
        out = bank.sample_all(40000, generator=g)
        assert out.shape == (3, 40000, 2)
        counts = torch.bincount(out[0, :, 0].long(), minlength=20)
        assert counts[4:12].min() > 4500 and counts[4:12].max() < 5500 and counts[:4].sum() == 0
        assert set(out[2, :, 0].long().tolist()) == {12, 13, 14, 15}
        assert torch.count_nonzero(out[1]) == 0  # empty class: zeros
        assert torch.equal(bank.sample(1, 5), torch.zeros(5, 2))

    def test_generator_reproducible(self, impl):
        bank = MemoryBank(2, 16, 4)
        bank.push(torch.randn(30, 4), torch.randint(0, 2, (30,)))
        a = bank.sample(1, 64, generator=torch.Generator().manual_seed(5))
        b = bank.sample(1, 64, generator=torch.Generator().manual_seed(5))
        assert torch.equal(a, b)
        with pytest.raises(IndexError):
            bank.sample(2, 4)

    def test_out_buffer(self, impl):
        bank = MemoryBank(2, 16, 4)
        bank.push(torch.randn(30, 4), torch.randint(0, 2, (30,)))
        buf = torch.full((2, 64, 4), float("nan"))
        got = bank.sample_all(64, generator=torch.Generator().manual_seed(5), out=buf)
        assert got is buf
        assert torch.equal(buf, bank.sample_all(64, generator=torch.Generator().manual_seed(5)))
        one = torch.empty(64, 4)
        assert bank.sample(1, 64, torch.Generator().manual_seed(5), out=one) is one
        assert torch.equal(one, bank.sample(1, 64, generator=torch.Generator().manual_seed(5)))
        for bad in (torch.empty(2, 63, 4), torch.empty(2, 64, 4, dtype=torch.float64), torch.empty(4, 64, 2).transpose(0, 2)[:2]):
            with pytest.raises(ValueError, match="out must be"):
                bank.sample_all(64, out=bad)

    def test_state_dict_round_trip(self, impl, tmp_path):
        bank = MemoryBank(3, 5, 4, dtype=torch.float16)
        for keys, labels in random_pushes(3, 5, steps=3, dim=4):
            bank.push(keys, labels)
        torch.save(bank.state_dict(), tmp_path / "bank.pt")
        other = MemoryBank(3, 5, 4, dtype=torch.float16)
        other.load_state_dict(torch.load(tmp_path / "bank.pt", weights_only=True))
        for c in range(3):
            assert torch.equal(other.keys(c), bank.keys(c))
        with pytest.raises(ValueError, match="bank must be"):
            MemoryBank(3, 6, 4).load_state_dict(bank.state_dict())


DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    for lib in filter(None, os.environ.get("NOISYSEG_DEV_LIBS", "").split(":")):
        torch.ops.load_library(lib)
    from noisyseg.ops import MemoryBank
    rank = int(sys.argv[1])
    dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=rank, world_size=2)
    g = torch.Generator().manual_seed(rank)
    m = 7 if rank == 0 else 19
    keys = torch.randn(m, 3, generator=g)
    labels = torch.randint(0, 3, (m,), generator=g)
    bank = MemoryBank(3, 6, 3)
    bank.push(keys, labels, gather=True)
    torch.save({"bank": bank.state_dict(), "keys": keys, "labels": labels}, sys.argv[3])
    dist.destroy_process_group()
""")


@pytest.mark.slow
def test_ddp_gather_pushes_identically(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(tmp_path / "init"), str(tmp_path / f"{r}.pt")],
                              env=env) for r in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    out = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(2)]
    single = MemoryBank(3, 6, 3)
    single.push(torch.cat([out[0]["keys"], out[1]["keys"]]), torch.cat([out[0]["labels"], out[1]["labels"]]))
    for r in range(2):
        for name, tensor in single.state_dict().items():
            assert torch.equal(out[r]["bank"][name], tensor)


@needs_kernel
@pytest.mark.cuda
class TestCuda:
    def test_matches_cpu_and_never_syncs(self):
        cpu, gpu = MemoryBank(21, 300, 16), MemoryBank(21, 300, 16, device="cuda")
        for keys, labels in random_pushes(21, 300, steps=6, dim=16, seed=3):
            cpu.push(keys, labels)
            keys, labels = keys.cuda(), labels.cuda()
            torch.cuda.set_sync_debug_mode("error")
            try:
                gpu.push(keys, labels)
                sample = gpu.sample_all(128, generator=torch.Generator("cuda").manual_seed(0))
            finally:
                torch.cuda.set_sync_debug_mode("default")
            for name, tensor in cpu.state_dict().items():
                assert torch.equal(gpu.state_dict()[name].cpu(), tensor)
        stored = {tuple(k) for c in range(21) for k in cpu.keys(c).tolist()}
        assert sample.shape == (21, 128, 16)
        assert all(tuple(k) in stored or not any(k) for k in sample.view(-1, 16).cpu().tolist())

    def test_large_push_matches_reference(self):
        bank = torch.zeros(5, 1000, 8, device="cuda")
        state = [(bank.clone(), torch.zeros(5, dtype=torch.long, device="cuda"),
                  torch.zeros(5, dtype=torch.long, device="cuda")) for _ in range(2)]
        keys = torch.randn(200000, 8, device="cuda")
        labels = torch.randint(-2, 7, (200000,), device="cuda")
        torch.ops.noisyseg.memory_bank_push(*state[0], keys, labels)
        mb.memory_bank_push_reference(*state[1], keys, labels)
        for a, b in zip(*state):
            assert torch.equal(a, b)
