"""One module per `plasmd` subcommand: `add_arguments(name, parser)` and `main(args)`.

Modules import only the standard library at module level; what a command needs
(wasmtime, the actors, an HTTP client) is imported inside `main`.
"""
