"""One module per `bench` subcommand; each exposes `register(subparsers, common)`."""
