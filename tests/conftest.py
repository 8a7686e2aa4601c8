"""Shared fixtures (data-layer tests)."""
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes its NetCDF cache into a temporary directory, never results/cache."""
    monkeypatch.setenv("DPLPAPER_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def full_data():
    """full_data(name) -> folder of a full (not shipped) data set, or pytest.skip with the reason."""
    from dplpaper.data import registry

    def get(name):
        p = registry.find(name)
        if p is None:
            pytest.skip(f"data set {name!r} not found by the registry (needs ../shared/data or $DPLPAPER_DATA)")
        return p
    return get
