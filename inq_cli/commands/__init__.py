"""One module per `inq` subcommand; each exposes ``register(app: typer.Typer) -> None``."""
