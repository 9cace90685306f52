"""The lab: several Ferry hosts on one machine, each a network namespace with its own ferryd."""
