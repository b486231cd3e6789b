"""The local HTTP API of plasmd: server (transport) and routes (what each path does)."""
