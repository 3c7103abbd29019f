"""Renamed gpuad.nn.utils.rnn (torch's path); this alias goes in the next release."""
from .. import deprecation

deprecation.module_moved(__name__, "gpuad.nn.utils.rnn")
