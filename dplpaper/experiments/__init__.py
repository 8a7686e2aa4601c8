"""Case-study experiments: the computation behind each notebook, one module per case.

Submodules are imported explicitly (``from dplpaper.experiments import streamflow``); this
package imports none of them, so that each stays independent of the others' dependencies.
"""
