"""The daemon on each node: lookup, inventory reports, heartbeat, hardware watch, RPC endpoints."""
