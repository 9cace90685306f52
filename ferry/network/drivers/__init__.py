"""Network drivers: how a network and an endpoint become kernel objects on one host."""
