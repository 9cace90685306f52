"""The only code that touches the kernel: namespaces, netlink, nftables, sysctls, processes,
untrusted paths resolved inside a root (openat2).

Everything above this package computes plans as plain data and hands them here to apply.
"""
