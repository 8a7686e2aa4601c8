"""Published CAMELS-US streamflow accuracy, to place this package's numbers in the field.

Each row is a number a peer published (median over basins), with its source and protocol, as
collected in the project's survey of the field (``shared/reviews/anchors.md``, section 3.1). They
are references for the reader, never inputs to a computation or a verdict; ``same_split`` marks
the rows on Case 2's periods (train 1999-10-01..2008-09-30, test 1989-10-01..1999-09-30).
"""
from __future__ import annotations

import pandas as pd

__all__ = ["PUBLISHED_CAMELS", "published_camels"]

_CASE2 = "train 1999-10..2008-09, test 1989-10..1999-09"
_NEWMAN = "train 1980-10..1995-09, test 1995-10..2010-09"

#: (system, median NSE, median KGE or None, basins, protocol, same_split, source)
PUBLISHED_CAMELS: tuple = (
    ("LSTM (hydroDL), one model", 0.74, 0.76, 531, _CASE2, True, "MHPI benchmark page (mhpi.github.io, benchmarks)"),
    ("LSTM (hydroDL), ensemble", 0.765, 0.77, 531, _CASE2, True, "MHPI benchmark page"),
    ("LSTM (Kratzert et al. 2019 code)", 0.74, 0.75, 531, _CASE2, True, "MHPI benchmark page"),
    ("dPL-HBV (δHBV), no data assimilation", 0.75, None, 531, "test 1989-10..1999-09", True,
     "Jamaat et al. 2025, as quoted in chaopengshen/hydroPFN docs/benchmarks.md"),
    ("dPL-HBV (δHBV, dynamic parameters)", 0.73, 0.73, 671, _NEWMAN, False, "Feng et al. 2022, WRR"),
    ("δHBV 1.1p (released configuration)", 0.7431, 0.767, 531, _NEWMAN, False,
     "chaopengshen/hydroPFN docs/camels531_protocol.md (dMG code path)"),
    ("SAC-SMA calibrated per basin", 0.66, 0.73, 671, _NEWMAN, False, "Newman et al. 2015, via the MHPI benchmark page"),
)


def published_camels(same_split_only: bool = False) -> pd.DataFrame:
    """:data:`PUBLISHED_CAMELS` as a table (columns ``system, median_nse, median_kge, basins,
    protocol, same_split, source``); ``same_split_only``: only the rows on Case 2's periods."""
    df = pd.DataFrame(list(PUBLISHED_CAMELS), columns=["system", "median_nse", "median_kge", "basins", "protocol",
                                                        "same_split", "source"])
    return df[df["same_split"]].reset_index(drop=True) if same_split_only else df
