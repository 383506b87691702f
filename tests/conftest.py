import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never write to the user's decode cache, and never read a stale one."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.mktemp("bench-cache")))
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
