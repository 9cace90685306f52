"""Local API routes, one module per area of the Docker Engine API."""
