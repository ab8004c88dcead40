"""Suite-wide settings: determinism and thread count for the 2-core CI machine."""

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _seeded_torch():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def fake_sglang_version(tmp_path):
    """Env that makes `importlib.metadata.version('sglang')` report another version.

    A `sglang-X.dist-info` earlier on PYTHONPATH is found first by importlib.metadata, exactly as
    when a different SGLang release is installed; the sglang code itself is untouched.
    """

    def make(version: str) -> dict[str, str]:
        site = tmp_path / f"site-{version}"
        dist = site / f"sglang-{version}.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sglang\nVersion: {version}\n")
        old = os.environ.get("PYTHONPATH")
        return {"PYTHONPATH": str(site) + (os.pathsep + old if old else "")}

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module that trains tiny models: a second thread only adds synchronisation (and
    waits on busy cores). Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
