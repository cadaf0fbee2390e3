"""Puts the policy and the SDK on the path, so plain ``pytest`` runs from any directory."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[2] / "sdk" / "python")]
