"""The base of every model read from a file or a person: unknown keys are errors."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in the file must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
