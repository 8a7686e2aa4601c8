"""dplpaper.data: real data sets in one xarray schema, plus registry, splits, PET, twins and cache.

Series: ``xarray.Dataset`` with dims ``(site, time)``, string site ids, ``lat``/``lon`` coords,
``units`` and ``long_name`` on every variable; attributes: dim ``site`` only. See DEVELOPING.md.
Where a loader takes ``quick``: True = the subset shipped in ``data/``, False = the full set
(error if absent), None = full set when found, else the shipped subset.
"""
from .errors import DataFetchError, DataFormatError, DataNotFoundError, DataSetIncompleteError, ImplausibleDataError
from .registry import DATASETS, fetch, find, locate, quick_data_dir, resolve, status
from .camels import (cfs_to_mm_per_day, load_basin_list, load_camels_attributes, load_camels_daymet,
                     load_camels_forcing, load_camels_streamflow, load_leaf_river, load_mhpi_pub_folds,
                     read_camels_forcing_file, read_camels_streamflow_file)
from .caravan import list_caravan_basins, load_caravan, read_caravan_file
from .smap import load_smap, read_smap_dbcsv
from .pet import extraterrestrial_radiation, hargreaves, penman_monteith_fao56, pet_nldas
from .splits import (TEST_PERIOD, TRAIN_PERIOD, basin_fractions, check_no_nan, density_sample, grid_sample,
                     neighbour_cells, pub_folds, pub_split, random_pub_folds, temporal_split)
from .twin import make_twin, true_parameter_field
from .cache import cached, write_netcdf

__all__ = [
    "DataFormatError", "DataNotFoundError", "DataFetchError", "DataSetIncompleteError", "ImplausibleDataError",
    "DATASETS", "fetch", "find", "locate", "quick_data_dir", "resolve",
    "status", "cfs_to_mm_per_day", "load_basin_list", "load_camels_attributes", "load_camels_daymet",
    "load_camels_forcing", "load_camels_streamflow", "load_leaf_river", "load_mhpi_pub_folds",
    "read_camels_forcing_file", "read_camels_streamflow_file", "list_caravan_basins", "load_caravan",
    "read_caravan_file", "load_smap", "read_smap_dbcsv", "extraterrestrial_radiation", "hargreaves",
    "penman_monteith_fao56", "pet_nldas", "TEST_PERIOD", "TRAIN_PERIOD", "basin_fractions", "check_no_nan",
    "density_sample", "grid_sample", "neighbour_cells", "pub_folds", "pub_split", "random_pub_folds",
    "temporal_split", "make_twin", "true_parameter_field", "cached", "write_netcdf",
]
