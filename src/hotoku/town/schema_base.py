"""The base of every scenario block: strict fields and a ``source`` for its figures."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
Id = Annotated[str, Field(pattern=SLUG, min_length=1, max_length=64, description="lower-case id: a-z 0-9 - _")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Hourly24 = Annotated[list[float], Field(min_length=24, max_length=24, description="one value per local hour 0..23")]
Monthly12 = Annotated[list[float], Field(min_length=12, max_length=12, description="one value per month Jan..Dec")]


class Block(BaseModel):
    """A scenario block. Unknown keys are errors (a typo must not silently fall back to a default).

    ``source`` says where each figure of the block comes from, naming the field, e.g.
    ``"capacity_kwh: planning assumption ...; round_trip_efficiency: manufacturer data sheet ..."``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    source: str = Field("", description="where each figure of this block comes from, naming the field")


def mentions(text: str, field: str) -> bool:
    """Whether ``text`` names ``field`` as a word (so ``kw`` does not match inside ``charge_kw``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(field)}(?![A-Za-z0-9_])", text) is not None
