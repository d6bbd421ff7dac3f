"""``hwlink export nwb``: an EDL collection as an NWB file (extra ``[nwb]``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from hwlink.cli.common import UserError


@click.group("export")
def export_group() -> None:
    """Export EDL collections to other formats."""


@export_group.command("nwb")
@click.argument("collection", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The NWB file to write (e.g. session.nwb).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--session-description", default=None, help="NWB session_description (default: from the collection).")
@click.option("--session-id", default=None, help="NWB session_id (default: the collection name).")
@click.option("--session-start", default=None,
              help="NWB session_start_time, ISO 8601 with time zone (default: the collection's wall-clock anchor, "
                   "else its creation time).")
@click.option("--identifier", default=None, help="NWB identifier (default: the collection id).")
@click.option("--experimenter", multiple=True, help="Experimenter, 'Last, First' (repeatable).")
@click.option("--lab", default=None)
@click.option("--institution", default=None)
@click.option("--subject-id", default=None, help="Subject id (needed for any subject field).")
@click.option("--species", default=None, help="Latin binomial, e.g. 'Mus musculus'.")
@click.option("--sex", default=None, help="M, F, U or O.")
@click.option("--age", default=None, help="ISO 8601 duration, e.g. P90D.")
@click.option("--subject-description", default=None)
@click.option("--electrodes", "electrodes", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file describing the electrodes (columns dataset, channel, location, group; optional "
                   "group_description, device, device_description, device_manufacturer, x, y, z, rel_x, rel_y, "
                   "rel_z, imp, filtering, reference, conversion): the channels it names are written as "
                   "ElectricalSeries.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def export_nwb_command(collection: Path, output: Path, overwrite: bool, session_description: str | None,
                       session_id: str | None, session_start: str | None, identifier: str | None,
                       experimenter: tuple[str, ...], lab: str | None, institution: str | None,
                       subject_id: str | None, species: str | None, sex: str | None, age: str | None,
                       subject_description: str | None, electrodes: Path | None, quiet: bool) -> None:
    """Write COLLECTION (hwlink record/run, or Syntalos) to an NWB file: signals and line readings as
    TimeSeries, digital lines also as intervals, CSV tables as DynamicTables, clock sync (tsync) as tables.
    Channels named in --electrodes are ElectricalSeries (in volts) with an electrode table.

    Fields NWB needs come from the options or the collection's attributes; a missing one is named.
    """
    from hwlink.edl import EdlError  # imported on use: the CLI starts without the EDL and NWB code
    from hwlink.nwb_export import ExportError, NwbMetadata, export_nwb
    start = None
    if session_start is not None:
        try:
            start = datetime.datetime.fromisoformat(session_start)
        except ValueError:
            raise UserError(f"--session-start {session_start!r} is not an ISO 8601 date and time") from None
    metadata = NwbMetadata(session_description=session_description, identifier=identifier, session_id=session_id,
                           session_start_time=start, experimenter=list(experimenter), lab=lab,
                           institution=institution, subject_id=subject_id, species=species, sex=sex, age=age,
                           subject_description=subject_description)
    total = sum(path.stat().st_size for path in collection.rglob("*") if path.is_file())
    try:
        if quiet:
            report = export_nwb(collection, output, metadata=metadata, overwrite=overwrite, electrodes=electrodes)
        else:
            with click.progressbar(length=max(total, 1), label="exporting", file=click.get_text_stream("stderr"),
                                   show_pos=False) as bar:
                report = export_nwb(collection, output, metadata=metadata, overwrite=overwrite,
                                    progress=bar.update, electrodes=electrodes)
    except (ExportError, EdlError) as error:
        raise UserError(str(error)) from None
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    electrical = f" ({len(report.electrical_series)} electrical)" if report.electrical_series else ""
    click.echo(f"wrote {report.path} ({report.bytes_written / 1e6:.1f} MB): {len(report.series)} time series"
               f"{electrical}, {len(report.tables)} tables, {len(report.sync_tables)} clock-sync tables")


def register(group: click.Group) -> None:
    group.add_command(export_group)
