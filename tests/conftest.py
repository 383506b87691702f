import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never write to the user's decode cache, and never read a stale one."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.mktemp("bench-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _cpu_by_default():
    """Tests compute on the CPU (bench.batches.default_device reads BENCH_DEVICE), also on a machine with a GPU:
    they compare with CPU tensors and expect CPU-reproducible numbers. A GPU test passes its device explicitly."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_DEVICE", "cpu")
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that changes torch's thread count gives it back: results elsewhere depend on it."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_thread():
    """Run the test with one torch thread (bit-reproducible and fair on a shared 2-core machine)."""
    import torch

    torch.set_num_threads(1)


def child_env(*paths, **extra: str) -> dict:
    """The environment for a child Python (``python -m bench ...``): the caller's, with ``paths`` put in front of
    its ``PYTHONPATH``, never instead of it (bench or its dependencies may be importable only through it), plus
    ``extra`` variables. Test modules import it: ``from conftest import child_env``."""
    import os

    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), *kept]), **extra}
