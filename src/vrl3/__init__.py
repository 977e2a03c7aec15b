"""VRL3 reproduction: environments, demonstrations, agent and workflow CLIs."""

__version__ = "0.1.0"
