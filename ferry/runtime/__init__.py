"""Containers as namespaced processes: their files, images, processes and exec."""
