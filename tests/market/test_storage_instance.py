"""Storage and the tariff in the market instance: JSON round trip, old files, draws left alone, TOU prices."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from market.errors import InstanceError
from market.instance import InstanceOptions, build_instance, instance_from_dict
from market.tariff import tariff_factor
from physical.profiles import interval_index
from tests.conftest import SUMMER_NOON, feeder


def test_storage_round_trips_through_json():
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1,
                          options=InstanceOptions(storage_share=0.6, tariff="tou"))
    assert inst.storage
    back = instance_from_dict(json.loads(inst.to_json()))
    assert back.storage == inst.storage
    assert back.options == inst.options


def test_storage_draws_leave_every_other_draw_unchanged():
    plain = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=4)
    with_storage = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=4,
                                  options=InstanceOptions(storage_share=1.0))
    assert plain.agents == with_storage.agents and plain.trades == with_storage.trades
    assert not plain.storage and len(with_storage.storage) == sum(feeder("case33bw").pd_mw[1:] > 0)


def test_version_1_files_load_without_storage_and_unknown_versions_are_refused():
    data = json.loads(build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0).to_json())
    old = {k: v for k, v in data.items() if k != "storage"} | {"schema_version": 1}
    for key in ("tariff", "storage_share", "storage_power_ratio", "storage_hours", "storage_efficiency",
                "storage_soc_range", "storage_soc0"):
        del old["options"][key]
    assert instance_from_dict(old).storage == ()
    with pytest.raises(InstanceError, match="schema_version"):
        instance_from_dict(data | {"schema_version": 3})


def test_a_bad_unit_in_a_file_names_the_field():
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1, options=InstanceOptions(storage_share=1))
    data = json.loads(inst.to_json())
    data["storage"][0]["eta_d"] = 1.5
    with pytest.raises(InstanceError, match=r"field storage\[0\]"):
        instance_from_dict(data, "x.json")


def test_tou_tariff_prices_the_hours_of_its_documented_shape():
    opts = InstanceOptions(tariff="tou")
    prices = {hour: build_instance(feeder("case15da"), interval=f"2016-03-10T{hour:02d}:30", seed=0,
                                   options=opts).retail_price for hour in (3, 12, 18, 21, 23)}
    assert prices == pytest.approx({3: 13.2, 12: 22.0, 18: 33.0, 21: 22.0, 23: 13.2})
    assert tariff_factor("flat", interval_index("2016-03-10T18:00")) == 1.0


def test_tou_refuses_a_feed_in_price_above_its_cheapest_retail_price():
    with pytest.raises(InstanceError, match="feed_in_price"):
        InstanceOptions(tariff="tou", feed_in_price=15.0)
    with pytest.raises(InstanceError, match="tariff"):
        replace(InstanceOptions(), tariff="dynamic")
