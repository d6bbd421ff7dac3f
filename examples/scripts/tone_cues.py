"""Cue the tone generator: a 2 s tone every 5 s, as ControlCommands on one output port (syntalos_mlink style)."""

import syntalos_mlink as syl

TONE_MSEC = 2000  # START with a duration: the generator stops by itself
CUE_EVERY_SEC = 5.0

control = syl.get_output_port("control-out")


def tone(duration_msec):
    command = syl.ControlCommand()
    command.kind = syl.ControlCommandKind.START
    command.duration = duration_msec
    return command


def run():
    """One cue, then wait; wait_sec keeps serving the engine, so a stop ends the loop promptly."""
    while syl.is_running():
        control.submit(tone(TONE_MSEC))
        syl.println(f"cue at {syl.time_since_start_msec()} ms")
        syl.wait_sec(CUE_EVERY_SEC)
