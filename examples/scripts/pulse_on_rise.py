"""Pulse an output line (13) for 5 ms whenever input line 2 rises: a closed loop through a script."""

import syntalos_mlink as syl

readings = syl.get_input_port("readings")
commands = syl.get_output_port("commands")

trigger = syl.HwInputLine(commands, 2)
led = syl.HwOutputLine(commands, 13)
last_level = {}


def prepare():
    readings.on_data = on_reading
    return True


def start():
    trigger.send_mode()
    led.send_mode()


def on_reading(reading):
    if reading.line_id == trigger.line_id:
        if reading.value and not last_level.get(reading.line_id, 0):
            led.pulse_msec(5)
        last_level[reading.line_id] = reading.value
