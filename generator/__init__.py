"""archgen: requirements to architecture to a working repository."""

__version__ = "0.1.0"
