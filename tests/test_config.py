"""Config overrides (``--set KEY=VALUE``) and the resolved config written beside a run."""
import json

import pytest

from dplpaper.config import apply_overrides, config_dict, parse_value
from dplpaper.experiments.streamflow import Case2Config, Case3Config


def test_overrides_reach_fields_and_sections_with_their_types():
    cfg = Case2Config.quick()
    apply_overrides(cfg, ["dpl.nmul=4", "dpl.lr=1", "regionalization_refine_max_steps=6000",
                          "seeds=(0, 1, 2)", "forcing=era5land", "dpl.routing=false", "lstm.hidden=8"])
    assert cfg.dpl.nmul == 4 and cfg.dpl.lr == 1.0 and isinstance(cfg.dpl.lr, float)
    assert cfg.regionalization_refine_max_steps == 6000 and cfg.seeds == (0, 1, 2)
    assert cfg.forcing == "era5land" and cfg.dpl.routing is False and cfg.lstm.hidden == 8
    assert Case2Config.quick().dpl.nmul == 16          # presets are not touched
    cfg3 = apply_overrides(Case3Config.quick(), ["attribute_sets={'8': ('a', 'b')}", "fractions=0.5,1.0"])
    assert cfg3.attribute_sets == {"8": ("a", "b")} and cfg3.fractions == (0.5, 1.0)
    assert apply_overrides(Case3Config.quick(), ["regionalization_sets=8,27"]).regionalization_sets == ("8", "27")


def test_bad_overrides_name_the_key_and_the_valid_ones():
    cfg = Case2Config.quick()
    with pytest.raises(ValueError, match="no field 'nmull'.*nmul"):
        apply_overrides(cfg, ["dpl.nmull=4"])
    with pytest.raises(ValueError, match="not a section"):
        apply_overrides(cfg, ["model.nmul=4"])
    with pytest.raises(ValueError, match="expected a int"):
        apply_overrides(cfg, ["dpl.nmul=four"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(cfg, ["dpl.nmul"])
    with pytest.raises(ValueError, match="is a section"):
        apply_overrides(cfg, ["dpl=3"])
    with pytest.raises(ValueError, match="DPLSettings.net"):      # the section's own checks run again
        apply_overrides(cfg, ["dpl.net=transformer"])
    with pytest.raises(ValueError, match="true or false"):
        parse_value("maybe", True, "dpl.routing")


def test_config_dict_is_json_and_round_trips_the_values():
    cfg = apply_overrides(Case3Config.full(), ["dpl.epochs=7"])
    d = json.loads(json.dumps(config_dict(cfg)))
    assert d["_class"] == "Case3Config" and d["dpl"]["epochs"] == 7
    assert d["regionalization_refine_max_steps"] == 6000 and d["fractions"][-1] == 1.0
    with pytest.raises(TypeError):
        config_dict({"a": 1})


def test_cli_set_is_applied_after_the_named_options():
    from dplpaper.cli import _overrides, build_parser

    args = build_parser().parse_args(["run", "case3", "--mode", "full", "--regionalization-refine-steps", "10",
                                      "--set", "regionalization_refine_steps=20", "--set", "dpl.hidden=32"])
    cfg = _overrides(Case3Config.full(), args)
    assert cfg.regionalization_refine_steps == 20 and cfg.dpl.hidden == 32
