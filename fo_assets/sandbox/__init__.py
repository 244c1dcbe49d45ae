"""A local Dynamics 365 F&O: generated tenant data, OData over HTTPS, an Entra-style token endpoint,
faults on demand, change simulation and Business Events. Used by the demo and the tests; the connector
treats it exactly like a real tenant."""

from .config import SandboxConfig
from .sandbox import Sandbox

__all__ = ["Sandbox", "SandboxConfig"]
