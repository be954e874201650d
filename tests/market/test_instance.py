"""Market instances: roles from profiles, seeded parameters, partners, and a lossless JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from market import instance as instance_module
from market.errors import InstanceError
from market.instance import InstanceOptions, build_instance, instance_from_dict, load_instance
from tests.conftest import SUMMER_NOON, feeder


@pytest.fixture
def inst():
    return build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=3)


def test_roles_follow_the_sign_of_the_desired_injection(inst):
    for a in inst.agents:
        assert a.p_hat_kw == pytest.approx(a.g_kw - a.d_kw)
        assert a.role == ("buyer" if a.p_hat_kw < 0 else "seller" if a.p_hat_kw > 0 else "passive")
    assert inst.role_mask("buyer").any() and inst.role_mask("seller").any()


def test_parameters_are_drawn_in_the_given_ranges(inst):
    o = inst.options
    for a in inst.agents:
        if a.role == "buyer":
            assert o.buyer_a[0] <= a.a <= o.buyer_a[1] and o.buyer_b[0] <= a.b <= o.buyer_b[1]
            assert o.buyer_c[0] <= a.c <= o.buyer_c[1]
        elif a.role == "seller":
            assert o.seller_a[0] <= a.a <= o.seller_a[1] and a.c == 0


def test_same_seed_same_instance_other_seed_other_instance(inst):
    again = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=3)
    other = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=4)
    assert again.to_json() == inst.to_json()
    assert other.to_json() != inst.to_json()


def test_default_partners_are_all_buyers_times_all_sellers(inst):
    pairs = {(t.buyer, t.seller) for t in inst.trades}
    buyers = [a.bus for a in inst.agents if a.role == "buyer"]
    sellers = [a.bus for a in inst.agents if a.role == "seller"]
    assert pairs == {(b, s) for b in buyers for s in sellers}


def test_auto_partners_are_all_pairs_up_to_the_limit_then_the_nearest(monkeypatch):
    f = feeder("case33bw")
    rules = {rule: build_instance(f, interval=SUMMER_NOON, seed=3, options=InstanceOptions(partners=rule))
             for rule in ("all", "nearest")}
    pairs = len(rules["all"].trades)
    assert pairs > len(rules["nearest"].trades)
    for limit, rule in ((pairs, "all"), (pairs - 1, "nearest")):
        monkeypatch.setattr(instance_module, "MAX_ALL_TRADES", limit)
        auto = build_instance(f, interval=SUMMER_NOON, seed=3)
        assert auto.trades == rules[rule].trades


def test_nearest_partners_are_the_electrically_closest():
    f = feeder("case33bw")
    inst = build_instance(f, interval=SUMMER_NOON, seed=3, options=InstanceOptions(partners="nearest", k_nearest=2))
    d = f.path_impedance_pu()
    sellers = [a.bus for a in inst.agents if a.role == "seller"]
    for b in {t.buyer for t in inst.trades}:
        mine = [t.seller for t in inst.trades if t.buyer == b]
        assert len(mine) == 2
        assert max(d[b, s] for s in mine) <= min(d[b, s] for s in sellers if s not in mine) + 1e-12
    fees = [t.fee for t in inst.trades]
    assert all(fee > 0 for fee in fees)


def test_json_round_trip_is_lossless(inst, tmp_path):
    text = inst.to_json()
    back = instance_from_dict(json.loads(text))
    assert back.to_json() == text
    assert np.array_equal(back.feeder.r_pu, inst.feeder.r_pu) and back.agents == inst.agents
    path = tmp_path / "instance.json"
    path.write_text(text)
    assert load_instance(path).to_json() == text


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("agents"), "missing field agents"),
    (lambda d: d["agents"][0].update(role="seller"), r"agents\[0\].role: expected 'buyer'|agents\[0\].role: expected"),
    (lambda d: d["trades"].append(dict(d["trades"][0])), r"trades\[\d+\]: duplicate"),
    (lambda d: d["feeder"].update(parent=[-1, 0]), "field feeder: expected arrays"),
    (lambda d: d["options"].update(colour="red"), "unknown keys"),
    (lambda d: d["options"].update(buyer_a=[2, 1]), "buyer_a: expected a range"),
    (lambda d: d.update(schema_version=99), "schema_version"),
])
def test_malformed_instance_names_the_field(inst, tmp_path, edit, message):
    data = json.loads(inst.to_json())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InstanceError, match=message) as err:
        load_instance(path)
    assert str(path) in str(err.value)


def test_unreadable_instance_files(tmp_path):
    with pytest.raises(InstanceError, match="cannot read"):
        load_instance(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(InstanceError, match="not valid JSON"):
        load_instance(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InstanceError, match="JSON object"):
        load_instance(bad)


def test_bad_options_are_refused():
    with pytest.raises(InstanceError, match="partners"):
        InstanceOptions(partners="everyone")
    with pytest.raises(InstanceError, match="feed-in"):
        InstanceOptions(feed_in_price=30.0, retail_price=20.0)
    with pytest.raises(InstanceError, match="pv_share: expected a share"):
        InstanceOptions(pv_share=1.5)
