"""``cellabel samples make DIR --count N --seed S``: write sample clips, truth and bad files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.samples.badfiles import make_bad_files
from app.samples.generator import make_samples

samples_app = typer.Typer(
    help="Generate cartoon sample clips with exact ground truth.", no_args_is_help=True
)


@samples_app.callback()
def samples() -> None:
    """Cartoon sample clips for demos, tests and benchmarks."""


@samples_app.command("make")
def make(
    directory: Path = typer.Argument(..., help="Folder to write clips (<name>.mp4 + <name>.json)."),
    count: int = typer.Option(12, "--count", "-n", min=1, help="Number of clips."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed; the same seed gives the same clips."),
    bad: bool = typer.Option(True, "--bad/--no-bad", help="Also write broken files to DIR/bad."),
) -> None:
    """Write COUNT seeded cartoon clips with ground truth (and broken files for tests)."""
    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("clips", total=count)

        def step(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, description=f"clips {name}".strip())

        clips = make_samples(directory, count, seed, progress=step)
    table = Table(title=f"{len(clips)} sample clips in {directory}")
    table.add_column("clip", no_wrap=True)
    table.add_column("size @ fps", no_wrap=True)
    for col in ("frames", "timing", "shots"):
        table.add_column(col, justify="right")
    for col in ("subsets", "characters", "audio"):
        table.add_column(col)
    for c in clips:
        t = c.truth
        table.add_row(
            t["clip"],
            f"{t['width']}x{t['height']} @ {t['fps']:g}",
            str(t["frame_count"]),
            t["timing"],
            str(len(t["shots"])),
            " ".join(t["subsets"]),
            " ".join(f"{ch['kind']}:{ch['motion']}" for ch in t["characters"]),
            "speech" if t["has_audio"] else "-",
        )
    console.print(table)
    if bad:
        files = make_bad_files(directory / "bad")
        bad_table = Table(title=f"bad files in {directory / 'bad'}")
        bad_table.add_column("file")
        bad_table.add_column("expected failure")
        bad_table.add_column("what it is")
        for f in files:
            bad_table.add_row(f.path.name, f.kind, f.note)
        console.print(bad_table)
