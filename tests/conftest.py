"""Fixtures that several test files share."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """One torch thread, as in a worker or the evaluator: one state at a time gains nothing from more,
    and on a busy machine more threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
