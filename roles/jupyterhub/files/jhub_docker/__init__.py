"""JupyterHub extensions of the jhub.docker collection, installed in the hub image."""
