"""ferryd: one asyncio process per host, wiring the API, the agent and (on managers) the manager."""
