"""Shared fixtures. ``synthetic_batch`` builds a real batch directory without torch (:mod:`testkit.batch`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from testkit.batch import write_batch


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for modules of tiny tensors.

    On a small shared CPU, OpenMP's fork-join and spinning threads cost more than
    they save on tiny tensors (seen 4-30x slower under load). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def synthetic_batch(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``synthetic_batch(n_items=4, size=64) -> batch_dir``."""

    def make(name: str = "batch", **kw: Any) -> Path:
        d = tmp_path / name
        write_batch(d, **kw)
        return d

    return make
