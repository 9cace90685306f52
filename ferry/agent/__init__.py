"""Agent side: the session with a manager and the reconcilers that make this host match."""
