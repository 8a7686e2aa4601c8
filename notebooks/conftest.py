"""pytest configuration for the notebooks (nbval): key results are checked strictly here.

``dplpaper.keyresults.KeyResults.check`` raises on a key result outside its tolerance only when
``DPLPAPER_CHECK_KEY_RESULTS`` is set; the kernels nbval starts inherit this process's environment.
"""
import os

os.environ.setdefault("DPLPAPER_CHECK_KEY_RESULTS", "1")

