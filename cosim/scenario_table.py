"""The base of every table of a scenario file (``cosim.scenario``, ``cosim.external``): a key the table does
not know is refused, not ignored -- a misspelt option must not fall back to its default unnoticed -- and a
loaded table is frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ScenarioTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
