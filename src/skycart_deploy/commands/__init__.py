"""Command groups of `skycart-deploy`; each module exposes `app`, a `typer.Typer`."""
