"""The experiment runtime: ``hwlink run EXPERIMENT`` runs modules joined by typed ports and records them.

Scripts written for Syntalos' ``syntalos_mlink`` and Open Ephys Python Processor scripts run unmodified, each
in a worker process of its own (``hwlink.runtime.host``). See README "Experiments" for the file format.
"""

from hwlink.runtime.engine import MODULE_KINDS, Engine, RunResult
from hwlink.runtime.experiment import ExperimentError, load_experiment

__all__ = ["Engine", "ExperimentError", "MODULE_KINDS", "RunResult", "load_experiment"]
