"""``hwlink doctor``: what this machine gives hwlink's timing and processes, from the platform seam."""

from __future__ import annotations

import threading

import click

from hwlink import platform


@click.command("doctor")
def doctor_command() -> None:
    """Report the clock, timer precision, thread priority obtained, worker channel and the rest of the platform.

    A timing thread is started to ask for the priority hwlink's pulse and reader threads ask for, so the report
    says what they get here (e.g. real-time priority refused without CAP_SYS_NICE or an rtprio limit).
    """
    probe = threading.Thread(target=platform.make_thread_timely, args=("timing threads (probe)",),
                             name="hwlink-doctor-probe")
    probe.start()
    probe.join()
    report = platform.describe(measure=True)
    width = max(len(key) for key in report)
    for key, value in report.items():
        click.echo(f"{key:<{width}}  {value}")


def register(group: click.Group) -> None:
    group.add_command(doctor_command)
