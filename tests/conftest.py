"""One small local Ray cluster for the whole test session, started on first use."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    import ray

    from actors.remote import start_ray

    directory = tmp_path_factory.mktemp("ray")
    start_ray(directory, namespace="tests", num_cpus=2)
    yield ray
    ray.shutdown()
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
