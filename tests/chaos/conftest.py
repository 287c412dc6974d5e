"""The chaos suite reuses the end-to-end fixtures (a real service as a subprocess)."""

from tests.e2e.conftest import service_factory  # noqa: F401
