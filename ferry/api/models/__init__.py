"""Pydantic models in the Docker Engine API's JSON shapes, shared by ferryd and ferry."""
