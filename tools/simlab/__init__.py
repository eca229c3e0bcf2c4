"""simlab: the simulated lab of labkit.cluster (QEMU guests, Redfish BMCs, a private L2 network)."""
