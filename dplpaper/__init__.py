"""dplpaper: differentiable parameter learning (dPL) for hydrological models, as a reproducible paper package."""
__version__ = "0.1.0"

from dplpaper import threads as _threads

# one intra-op thread per process unless $DPLPAPER_THREADS / $OMP_NUM_THREADS ask for more
# (the measured reasons are in dplpaper/threads.py)
_threads.apply()
