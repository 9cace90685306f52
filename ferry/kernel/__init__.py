"""The only code that touches the kernel: namespaces, netlink, nftables, sysctls, processes.

Everything above this package computes plans as plain data and hands them here to apply.
"""
