"""Constants shared by the HBV model (:mod:`dplpaper.models.hbv`) and its fused C kernel
(:mod:`dplpaper.models.hbv_fused`), kept apart so that neither module imports the other's late."""

#: default initial storage of every state (mm), as in the dPL code line.
DEFAULT_INITIAL_STATE = 0.001
#: number of daily ordinates of the gamma unit hydrograph.
UH_LENGTH = 15
