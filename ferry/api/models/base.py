"""The base of every API model: Docker's PascalCase names, unknown fields ignored (clients send
more than Ferry uses)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DockerModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ObjectVersion(DockerModel):
    Index: int = 0
