"""What a line can do, and how a SET_MODE request maps onto that."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hwlink.errors import LineError
from hwlink.lines import LineModeFlags


class LineMode(enum.Enum):
    """The concrete modes a line can be put in; SET_MODE flags resolve to one of them."""

    DIGITAL_IN = "digital-in"
    DIGITAL_IN_PULLUP = "digital-in-pullup"
    DIGITAL_OUT = "digital-out"
    ANALOG_IN = "analog-in"
    ANALOG_OUT = "analog-out"

    @property
    def is_input(self) -> bool:
        return self in (LineMode.DIGITAL_IN, LineMode.DIGITAL_IN_PULLUP, LineMode.ANALOG_IN)


@dataclass(frozen=True)
class LineInfo:
    """One line of a board and its capabilities.

    ``analog_in_bits`` is the ADC resolution (0 = no analog input); ``analog_out_max`` the largest code an
    analog/PWM output accepts (0 = no analog output); ``analog_out_kind`` says whether that is PWM or a DAC.
    """

    line_id: int
    name: str
    digital_in: bool = False
    digital_out: bool = False
    pullup: bool = False
    analog_in_bits: int = 0
    analog_out_max: int = 0
    analog_out_kind: str = ""
    aliases: tuple[str, ...] = ()

    def modes(self) -> list[LineMode]:
        supported = []
        if self.digital_in:
            supported.append(LineMode.DIGITAL_IN)
        if self.pullup:
            supported.append(LineMode.DIGITAL_IN_PULLUP)
        if self.digital_out:
            supported.append(LineMode.DIGITAL_OUT)
        if self.analog_in_bits:
            supported.append(LineMode.ANALOG_IN)
        if self.analog_out_max:
            supported.append(LineMode.ANALOG_OUT)
        return supported

    def describe_modes(self) -> str:
        parts = []
        for mode in self.modes():
            if mode is LineMode.ANALOG_IN:
                parts.append(f"analog-in ({self.analog_in_bits} bit)")
            elif mode is LineMode.ANALOG_OUT:
                parts.append(f"{self.analog_out_kind or 'analog'}-out (0..{self.analog_out_max})")
            else:
                parts.append(mode.value)
        return ", ".join(parts) or "none"

    def resolve_mode(self, flags: LineModeFlags | int) -> LineMode:
        """Map SET_MODE flags to a mode this line supports, or raise naming the modes it has.

        IS_INPUT means digital input where the line has one, else analog input; IS_OUTPUT likewise for
        outputs. ANALOG (hwlink extension) forces the analog variant on lines that have both.
        """
        flags = LineModeFlags(int(flags))
        wants_input = bool(flags & LineModeFlags.IS_INPUT)
        wants_output = bool(flags & LineModeFlags.IS_OUTPUT)
        analog = bool(flags & LineModeFlags.ANALOG)
        pullup = bool(flags & LineModeFlags.PULL_UP)
        if wants_input and wants_output:
            raise LineError(f"line {self.label}: a line cannot be input and output at once")
        if not wants_output:  # Syntalos treats "neither" as input
            if pullup:
                if analog:
                    raise LineError(f"line {self.label}: pull-up applies to digital inputs only")
                mode = LineMode.DIGITAL_IN_PULLUP
            elif analog or not self.digital_in:
                mode = LineMode.ANALOG_IN
            else:
                mode = LineMode.DIGITAL_IN
        else:
            if pullup:
                raise LineError(f"line {self.label}: pull-up applies to inputs only")
            mode = LineMode.ANALOG_OUT if (analog or not self.digital_out) else LineMode.DIGITAL_OUT
        if mode not in self.modes():
            if not analog and mode in (LineMode.ANALOG_IN, LineMode.ANALOG_OUT):
                direction = "input" if mode is LineMode.ANALOG_IN else "output"
                raise LineError(f"line {self.label} has no {direction}; supported modes: {self.describe_modes()}")
            raise LineError(
                f"line {self.label} does not support {mode.value}; supported modes: {self.describe_modes()}"
            )
        return mode

    @property
    def label(self) -> str:
        return f"{self.line_id} ({self.name})" if self.name != str(self.line_id) else str(self.line_id)
