"""Network setup beyond a flat network: declared networks, who may use them, and switch ports."""
