"""The read side of the event log: tail it, verify its chain."""
