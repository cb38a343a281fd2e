"""`@record`: an immutable dataclass that is cheap to make, for what the engine makes per step.

A frozen dataclass's `__init__` sets every field through `object.__setattr__`, four times what
a plain assignment costs (1.2 µs against 0.3 µs for seven fields on the test VM), and the
engine makes a dozen such records for every step it runs — their `__init__`s were a tenth of
W3's run. A record is a plain dataclass at run time that type checkers treat as frozen
(`dataclass_transform(frozen_default=True)`): assigning to a field stays an error that mypy
reports in `src/` (strict), and a record hashes by value, as a frozen dataclass does. What it
gives up is the run-time `FrozenInstanceError`; keep `@dataclass(frozen=True)` where a value
crosses into code that is not type-checked and must not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

__all__ = ["record"]

_T = TypeVar("_T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform

    @dataclass_transform(frozen_default=True, field_specifiers=(field,))
    def record(cls: type[_T]) -> type[_T]: ...

else:

    def record(cls):
        return dataclass(cls, unsafe_hash=True)
