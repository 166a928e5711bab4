"""The `semiconv` command line: one program, several subcommands.

Errors the user can fix (bad input, missing files) print one line and exit
with status 2; no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .__about__ import __version__
from .errors import SemiconvError

app = typer.Typer(
    help="Semi-convolutional Mask R-CNN for C. elegans: check data, train, segment, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _version(value: bool):
    if value:
        typer.echo(f"semiconv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    """Semi-convolutional Mask R-CNN for C. elegans."""


@data_app.command("check")
def data_check(
    folder: Path = typer.Argument(..., help="A BBBC010-layout folder or an annotated folder (images/, annotations/)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here."),
):
    """Validate a dataset folder: count images, channels, wells, worms, overlaps; list every problem."""
    import json

    from tqdm import tqdm

    from .data.check import check_dataset, summarise_counts

    try:
        report = check_dataset(folder, progress=lambda xs: tqdm(xs, desc="reading wells", unit="well", file=sys.stderr))
    except SemiconvError as exc:
        _fail(str(exc))
    for line in report.lines():
        typer.echo(line)
    if json_out:
        from .io import write_text

        payload = dict(summarise_counts(report), problems=report.problems)
        write_text(json_out, json.dumps(payload, indent=2), overwrite=True)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SemiconvError as exc:  # last line of defence: one line, no traceback
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
