"""``docexchange demo`` (placeholder replaced below)."""
import click


@click.command()
def demo() -> None:
    """Chạy thử."""
