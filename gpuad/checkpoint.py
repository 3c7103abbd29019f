"""Renamed gpuad.serialization (torch's name); this alias goes in the next release."""
from . import deprecation

deprecation.module_moved(__name__, "gpuad.serialization")
