"""Safety gates: ordered, named checks that decide whether a step may run (before) and whether
its result may stand (after). See base.py for the seam and docs/gates.md for the catalogue."""
