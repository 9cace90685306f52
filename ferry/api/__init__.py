"""The local API: a subset of the Docker Engine API, served by ferryd and used by ferry."""
