"""Classical calibration baselines: batched SCE-UA and transfer-function regionalization."""
from .regionalization import BECK_ATTRIBUTE_NOTES, BECK_ATTRIBUTES_CAMELS, TransferFunctions, fit_regionalization
from .sceua import SCEUAResult, sceua, sceua_dask, site_rng

__all__ = [
    "SCEUAResult", "sceua", "sceua_dask", "site_rng",
    "TransferFunctions", "fit_regionalization", "BECK_ATTRIBUTES_CAMELS", "BECK_ATTRIBUTE_NOTES",
]
