"""nnjit: Numba-JIT compiled training kernels for multilayer perceptrons.

>>> import nnjit
>>> net = nnjit.Network([784, 30, 10], "sigmoid", "softmax", "cross_entropy")

The ``numpy`` backend (``backend="numpy"``) computes the same mathematics in
plain NumPy, as a baseline and as the oracle of the compiled kernels.
"""

from nnjit.errors import DivergenceError
from nnjit.gradcheck import gradcheck
from nnjit.history import History
from nnjit.network import Network
from nnjit.serialization import load

__version__ = "0.1.0"

__all__ = ["DivergenceError", "History", "Network", "__version__", "gradcheck", "load"]
