"""Shared test settings: few torch threads (2-core CI), deterministic algorithms."""
import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("RESNET_VIZ_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
