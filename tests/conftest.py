import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never write to the user's decode cache, and never read a stale one."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.mktemp("bench-cache")))
    yield
    mp.undo()
