"""``devserver.frame``, the name apps written for devserver 0.1 import its router by: :mod:`devserver.router`."""

from devserver.router import *  # noqa: F403
from devserver.router import __all__  # noqa: F401
