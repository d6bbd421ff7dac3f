"""Clock synchronization from the command line: ``hwlink sync simulate``."""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from hwlink.cli.common import DURATION, FiniteFloat, UserError
from hwlink.errors import ConfigError
from hwlink.sync.clockmodel import DeviceClock, parse_latency, parse_steps
from hwlink.sync.simulation import MethodResult, Scenario, compare, summary_row
from hwlink.units import format_usec, parse_frequency_hz

LABELS = {"hwlink": "hwlink (drift-aware)", "syntalos": "Syntalos baseline", "raw": "raw receive time"}


@click.group("sync")
def sync_group() -> None:
    """Device clock synchronization."""


@sync_group.command("simulate")
@click.option("--rate", default="30Hz", show_default=True, help="Sample rate of the device, e.g. 30Hz, 1kHz.")
@click.option("--drift-ppm", type=FiniteFloat(-100_000, 100_000), default=50.0, show_default=True,
              help="Device clock rate error in ppm (positive: device fast).")
@click.option("--drift-change", type=FiniteFloat(-100_000, 100_000), default=0.0, show_default=True, help="Drift change in ppm per hour.")
@click.option("--latency", default="exp:1ms", show_default=True,
              help="Transport latency: none, const:T, exp:MEAN, uniform:LOW-HIGH, usb:FRAME.")
@click.option("--spikes", default=None, help="Rare extra delays P:LOW-HIGH, e.g. 0.05:5ms-20ms.")
@click.option("--steps", default="", help="Device clock steps AT:STEP[,...], e.g. 10min:+50ms.")
@click.option("--duration", type=DURATION, default=None, help="Simulated run time [default: 10min, or the "
              "condition's own length].")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Seed of every random draw.")
@click.option("--condition", default=None,
              help="A named clock and link instead of --rate/--drift-ppm/--drift-change/--latency/--spikes/--steps: "
                   "crystal wander, latency timers, BLE, slow events, wrapping counters... ('list' names them).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the errors of the three over time into this PNG.")
def simulate_command(rate: str, drift_ppm: float, drift_change: float, latency: str, spikes: str | None,
                     steps: str, duration: int | None, seed: int, condition: str | None,
                     plot_path: Path | None) -> None:
    """Simulate a device clock and compare hwlink, the Syntalos baseline and raw receive times.

    Runs in simulated time (an hour of 1 kHz data takes well under a minute); errors are returned
    timestamps minus the true event times.
    """
    if condition is not None:
        simulate_condition(condition, duration, seed, plot_path)
        return
    duration = 600_000_000 if duration is None else duration
    rate_hz = parse_frequency_hz(rate)
    if not math.isfinite(drift_ppm) or abs(drift_ppm) > 10_000:
        raise UserError(f"--drift-ppm {drift_ppm} is outside -10000..10000")
    if duration * rate_hz / 1e6 < 2:
        raise UserError("--duration is too short for two samples at this rate")
    if duration * rate_hz / 1e6 > 20_000_000:
        raise UserError("--duration x --rate exceeds 20 million samples; shorten the run")
    try:
        latency_model = parse_latency(latency).with_spikes(spikes)
        clock = DeviceClock(offset_usec=-1_234_567, drift_ppm=drift_ppm, drift_change_ppm_per_hour=drift_change,
                            steps=parse_steps(steps))
    except ConfigError as error:
        raise UserError(str(error)) from None
    scenario = Scenario(rate_hz, clock, latency_model, duration, seed=seed)
    pairs = scenario.pairs()
    results = compare(scenario, pairs)
    click.echo(f"{len(pairs)} timestamps at {rate_hz:g} Hz over {format_usec(duration)}, drift {drift_ppm:g} ppm, "
               f"latency {latency_model.spec}; |error| after each method's warm-up")
    _print_table(results, pairs.event_usec)
    if plot_path is not None:
        draw(plot_path, pairs.event_usec, results, f"{rate_hz:g} Hz, {drift_ppm:g} ppm, {latency_model.spec}")
        click.echo(f"plot written to {plot_path}")


def simulate_condition(name: str, duration: int | None, seed: int, plot_path: Path | None) -> None:
    """The named condition's run (its own length unless --duration), compared as above."""
    from hwlink.sync.conditions import CONDITIONS  # here: the CLI starts without building them

    if name == "list":
        for known, entry in CONDITIONS.items():
            click.echo(f"{known:<24} {entry.description}")
        return
    if name not in CONDITIONS:
        raise UserError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
    named = CONDITIONS[name]
    if duration is not None:
        if duration * named.rate_hz / 1e6 < 2:
            raise UserError("--duration is too short for two samples at this condition's rate")
        if duration * named.rate_hz / 1e6 > 20_000_000:
            raise UserError("--duration x the condition's rate exceeds 20 million samples; shorten the run")
        named = named.with_duration(duration)
    pairs = named.pairs(seed)
    results = compare(named, pairs)  # type: ignore[arg-type]  # a Condition has what compare reads of a Scenario
    click.echo(f"{len(pairs)} timestamps, {named.description}, over {format_usec(named.duration_usec)}; "
               "|error| after each method's warm-up")
    _print_table(results, pairs.event_usec)
    click.echo(f"(errors include the link's constant delay, at least {format_usec(named.floor_usec)}, which no one-way "
               "method can see)")
    if plot_path is not None:
        draw(plot_path, pairs.event_usec, results, f"{name}: {named.description}")
        click.echo(f"plot written to {plot_path}")


def draw(path: Path, event_usec: np.ndarray, results: list[MethodResult], title: str) -> None:
    """One picture: |error| over time of the three methods on a log scale."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'hwlink[plot]'") from None
    minutes = (event_usec - event_usec[0]) / 60e6
    stride = max(1, event_usec.size // 20_000)  # keep the picture light for long 1 kHz runs
    figure, axes = plt.subplots(figsize=(10, 5))
    styles = {"raw": ("tab:gray", 2, 0.4), "syntalos": ("tab:orange", 3, 0.8), "hwlink": ("tab:blue", 3, 0.9)}
    for result in sorted(results, key=lambda r: r.name != "raw"):
        colour, size, alpha = styles[result.name]
        errors_ms = np.maximum(np.abs(result.error_usec[::stride]), 1.0) / 1000
        axes.scatter(minutes[::stride], errors_ms, s=size, color=colour, alpha=alpha, label=LABELS[result.name],
                     linewidths=0)
    axes.set_yscale("log")
    axes.set_xlabel("run time (min)")
    axes.set_ylabel("|timestamp error| (ms)")
    axes.set_title(title)
    axes.legend(loc="upper left", markerscale=4)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)


def register(group: click.Group) -> None:
    group.add_command(sync_group)


def _print_table(results: list[MethodResult], event_usec: np.ndarray) -> None:
    """One row per method: error percentiles after its warm-up, backward steps and cost per call."""
    click.echo(f"{'method':<22} {'p50':>10} {'p99':>10} {'max':>10} {'warm-up':>9} {'backward':>9} {'µs/call':>8}")
    for result in results:
        row = summary_row(result, event_usec)
        warmup = "never" if not math.isfinite(row["warmup_s"]) else f"{row['warmup_s']:.1f} s"
        cost = f"{row['cost']:.2f}" if result.name != "raw" else "-"
        click.echo(f"{LABELS[result.name]:<22} {format_usec(row['p50']):>10} {format_usec(row['p99']):>10} "
                   f"{format_usec(row['max']):>10} {warmup:>9} {int(row['backward']):>9} {cost:>8}")
