"""The enclave program and its simulated backend (a separate OS process; not hardware-protected)."""
