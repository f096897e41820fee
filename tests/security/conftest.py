"""Security checks use the integration tests' ``client`` and ``package`` fixtures."""

from tests.integration.conftest import client, package

__all__ = ["client", "package"]
