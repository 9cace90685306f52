"""Manager side: the cluster store, CA, allocator, orchestrator, scheduler and dispatcher."""
