"""Compatibility import path: the environment specs now live in :mod:`rentaliq.spec`.

Kept so that ``from rentaliq.environments import EnvironmentSpec, load_spec, ...`` keeps working;
new code imports from ``rentaliq.spec``.
"""

from rentaliq.spec import *  # noqa: F403
from rentaliq.spec import __all__  # noqa: F401
