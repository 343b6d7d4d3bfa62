"""One rich console for all output (stdout) and one for diagnostics (stderr)."""

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
