"""Ferry: multi-host container networking and orchestration on the kernel's own data plane."""

__version__ = "0.1.0"
API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
