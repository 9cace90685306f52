"""``ferry doctor``: the kernel against the store, on demand, changing nothing.

It reads the same plans the reconcilers apply (peers, VIP tables, published ports, names) and
compares them with what the kernel holds; the reconcilers repair, doctor tells.
"""
