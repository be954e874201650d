"""Unit conversion of MATPOWER case files: act on executable statements, never on comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matpowercaseframes import CaseFrames

from physical.errors import FeederError
from physical.matpower_case import case_path, read_matpower_case


def raw(name: str) -> CaseFrames:
    return CaseFrames(str(case_path(name)))


def test_ohms_and_kw_are_converted_like_matlab_does():
    converted, frames = read_matpower_case("case15da"), raw("case15da")
    z_base = 11.0**2 / 1.0  # (11 kV)^2 / 1 MVA, from the file's BASE_KV and baseMVA
    assert np.allclose(converted.branch.BR_R, frames.branch.BR_R.to_numpy() / z_base)
    assert np.allclose(converted.branch.BR_X, frames.branch.BR_X.to_numpy() / z_base)
    assert np.allclose(converted.bus.PD, frames.bus.PD.to_numpy() / 1e3)
    assert np.allclose(converted.bus.QD, frames.bus.QD.to_numpy() / 1e3)


def test_power_factor_conversion_of_case141():
    converted, frames = read_matpower_case("case141"), raw("case141")
    s_mva = frames.bus.PD.to_numpy() / 1e3
    assert np.allclose(converted.bus.PD, 0.85 * s_mva)
    assert np.allclose(converted.bus.QD, math.sin(math.acos(0.85)) * s_mva)


def test_a_comment_promising_a_conversion_is_not_acted_upon():
    """case15nbr's comment says "convert branch impedances from Ohms to p.u." but its code does not."""
    converted, frames = read_matpower_case("case15nbr"), raw("case15nbr")
    assert np.allclose(converted.branch.BR_R, frames.branch.BR_R)
    assert np.allclose(converted.bus.PD, frames.bus.PD.to_numpy() / 1e3)


def test_case_without_trailing_code_is_left_as_is():
    converted, frames = read_matpower_case("case17me"), raw("case17me")
    assert converted.conversions == ()
    assert np.allclose(converted.bus.PD, frames.bus.PD)


def _case_file(tmp_path, trailing: str):
    text = case_path("case15da").read_text()
    head = text[: text.index("%% convert branch impedances")]
    path = tmp_path / "custom.m"
    path.write_text(head + trailing)
    return path


def test_uninterpretable_trailing_code_is_refused(tmp_path):
    path = _case_file(tmp_path, "mpc.bus(:, PD) = load_scaling(mpc.bus(:, PD));\n")
    with pytest.raises(FeederError, match="cannot interpret statement"):
        read_matpower_case(str(path))


def test_column_names_must_be_defined_before_use(tmp_path):
    path = _case_file(tmp_path, "mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3;\n")
    with pytest.raises(FeederError, match="before idx_bus"):
        read_matpower_case(str(path))


def test_unknown_case_and_missing_file():
    with pytest.raises(FeederError, match="unknown MATPOWER case 'case_nope'"):
        read_matpower_case("case_nope")
    with pytest.raises(FeederError, match="does not exist"):
        read_matpower_case("/nonexistent/feeder.m")
