"""The ``ferry`` command: parse, call ferryd's API, render. No logic of its own."""
