"""The conductor: state machine, node locks, drivers, hash ring and the manager behind RPC."""
