"""Domain state as frozen dataclasses: validation, no I/O, no knowledge of storage."""
