"""The interfaces: the command (cli), the HTTP API (api), the embedded stack (stack), and the sandbox."""
