"""Where each value of a plan file came from, so any error can name file:line:column."""

from __future__ import annotations

from dataclasses import dataclass, field

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceMap:
    """Positions (1-based line and column) of the values and keys in one plan file.

    `values[path]` is where the value at `path` starts; `keys[path]` is where the mapping key
    naming it starts (used to point at an unknown key rather than at its value).
    """

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int] | None:
        """The position of `path`, or of its deepest ancestor the file has."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while True:
            if probe in table:
                return table[probe]
            if key and probe in self.values:
                return self.values[probe]
            if not probe:
                return None
            probe = probe[:-1]
