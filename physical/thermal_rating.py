"""Steady-state thermal ratings of overhead lines by IEEE 738, computed with ``linerate``.

A conductor's ampacity is the current at which the heat balance ``I^2 R(T_max) + q_s = q_c + q_r`` holds at its
highest allowed temperature. The *static* rating assumes conservative weather for every hour (hot, nearly calm,
full summer sun); a *dynamic* rating (DTR) uses the weather measured at that hour, which is almost always cooler
or windier, so the line may carry more. Both use linerate's IEEE 738 convection and radiation; the dynamic
rating's solar gain comes from the measured direct and diffuse irradiance (TMY), the static one from IEEE 738's
clear-sky model at summer noon.

Conductor data come from pandapower's overhead-line standard types (resistance at 20 degC and its temperature
coefficient, the rating pandapower quotes) and EN 50182's dimensions of those conductors; the transmission cases
carry no conductor data, so the conductor is chosen by voltage level (`conductor_for_voltage`). The cases carry
no geography either: each line gets an azimuth (direction it runs), which sets the wind's angle of attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import linerate
import numpy as np
import pandapower as pp
from linerate.equations import cigre601, solar_angles
from linerate.models.ieee738 import IEEE738

from physical.weather import WeatherSeries

#: Highest conductor temperature of the ratings (EN 50182's rating temperature for ACSR).
MAX_CONDUCTOR_TEMPERATURE_C = 80.0
#: Emissivity and solar absorptivity of an aged conductor (CIGRE TB 601 recommends 0.8-0.9 for both).
EMISSIVITY = 0.8
ABSORPTIVITY = 0.8
GROUND_ALBEDO = 0.15


@dataclass(frozen=True)
class StaticWeather:
    """The conservative weather a static rating assumes (IEEE 738 practice: 40 degC, 0.61 m/s across the line,
    clear-sky sun at solar noon of the summer solstice)."""

    air_temperature_c: float = 40.0
    wind_speed_m_s: float = 0.61
    angle_of_attack_deg: float = 90.0
    day: str = "2016-06-21"


@dataclass(frozen=True)
class ConductorType:
    """One overhead conductor: the pandapower standard type it is, and its EN 50182 dimensions."""

    std_type: str
    diameter_m: float
    core_diameter_m: float
    outer_strand_diameter_m: float

    def linerate_conductor(self) -> linerate.Conductor:
        data = _line_std_type(self.std_type)
        r20 = data["r_ohm_per_km"] / 1000.0
        alpha = data["alpha"]
        return linerate.Conductor(
            core_diameter=self.core_diameter_m,
            conductor_diameter=self.diameter_m,
            outer_layer_strand_diameter=self.outer_strand_diameter_m,
            emissivity=EMISSIVITY,
            solar_absorptivity=ABSORPTIVITY,
            temperature1=20.0,
            temperature2=MAX_CONDUCTOR_TEMPERATURE_C,
            resistance_at_temperature1=r20,
            resistance_at_temperature2=r20 * (1.0 + alpha * (MAX_CONDUCTOR_TEMPERATURE_C - 20.0)),
            aluminium_cross_section_area=float("nan"),
            constant_magnetic_effect=1,
            current_density_proportional_magnetic_effect=0,
            max_magnetic_core_relative_resistance_increase=1,
        )


@cache
def _line_std_type(name: str) -> dict:
    """A pandapower overhead-line standard type (building the empty net that holds the table takes seconds)."""
    return pp.load_std_type(pp.create_empty_network(), name, "line")


#: 110 kV class: 26 x 3.45 mm aluminium around 7 x 2.68 mm steel (EN 50182).
AL243 = ConductorType("243-AL1/39-ST1A 110.0", 21.8e-3, 8.04e-3, 3.45e-3)
#: 380 kV class: 54 x 3.4 mm aluminium around 7 x 3.4 mm steel (EN 50182).
AL490 = ConductorType("490-AL1/64-ST1A 380.0", 30.6e-3, 10.2e-3, 3.4e-3)


def conductor_for_voltage(vn_kv: float) -> ConductorType:
    """The conductor a line of this voltage is assumed to have: 243-AL1/39 below 200 kV, 490-AL1/64 above."""
    return AL243 if vn_kv < 200.0 else AL490


class IEEE738MeasuredSolar(IEEE738):
    """IEEE 738 with the solar gain from measured direct-normal and diffuse irradiance instead of clear sky.

    The irradiance on the conductor combines the beam at the sun's incidence angle, the diffuse sky and the
    ground's reflection (the CIGRE TB 601 formula linerate provides); everything else is IEEE 738.
    """

    def compute_global_radiation_intensity(self):
        sin_h = solar_angles.compute_sin_solar_altitude_for_span(self.span, self.time)
        sin_eta = solar_angles.compute_sin_solar_effective_incidence_angle_for_span(self.span, self.time, sin_h)
        return cigre601.solar_heating.compute_global_radiation_intensity(
            self.weather.direct_radiation_intensity, self.weather.diffuse_radiation_intensity,
            self.weather.ground_albedo, sin_eta, np.maximum(sin_h, 0.0),
        )


def _spans(conductors: list[ConductorType], azimuth_deg: np.ndarray, latitude: float, longitude: float,
           altitude: float) -> linerate.Span:
    """One linerate Span holding one element per entry of ``conductors`` (linerate's IEEE 738 convection takes
    1-D arrays only)."""
    unique = {c: c.linerate_conductor() for c in set(conductors)}
    lc = [unique[c] for c in conductors]
    fields = ("core_diameter", "conductor_diameter", "outer_layer_strand_diameter", "resistance_at_temperature1",
              "resistance_at_temperature2")
    kwargs = {f: np.array([getattr(c, f) for c in lc]) for f in fields}
    conductor = linerate.Conductor(
        emissivity=EMISSIVITY, solar_absorptivity=ABSORPTIVITY, temperature1=20.0,
        temperature2=MAX_CONDUCTOR_TEMPERATURE_C, aluminium_cross_section_area=float("nan"),
        constant_magnetic_effect=1, current_density_proportional_magnetic_effect=0,
        max_magnetic_core_relative_resistance_increase=1, **kwargs,
    )
    az = np.radians(np.asarray(azimuth_deg, float))
    step = 0.01  # degrees: a short span pointing along the azimuth
    start = linerate.Tower(latitude=latitude, longitude=longitude, altitude=altitude)
    end = linerate.Tower(latitude=latitude + step * np.cos(az),
                         longitude=longitude + step * np.sin(az) / np.cos(np.radians(latitude)), altitude=altitude)
    return linerate.Span(conductor=conductor, start_tower=start, end_tower=end, num_conductors=1)


def static_ampacity_a(conductors: list[ConductorType], azimuth_deg: np.ndarray, latitude: float,
                      longitude: float, altitude: float, assumption: StaticWeather = StaticWeather()) -> np.ndarray:
    """Static ampacity (A) per line under the conservative weather assumption."""
    span = _spans(conductors, azimuth_deg, latitude, longitude, altitude)
    wind_from = span.conductor_azimuth + np.radians(assumption.angle_of_attack_deg)
    weather = linerate.Weather(air_temperature=assumption.air_temperature_c, wind_direction=wind_from,
                               wind_speed=assumption.wind_speed_m_s, ground_albedo=GROUND_ALBEDO)
    noon = np.datetime64(f"{assumption.day}T12:00") - np.timedelta64(int(round(longitude / 15.0 * 3600)), "s")
    model = IEEE738(span, weather, noon)
    return np.asarray(model.compute_steady_state_ampacity(MAX_CONDUCTOR_TEMPERATURE_C), float)


def dynamic_ampacity_a(conductors: list[ConductorType], azimuth_deg: np.ndarray,
                       weather: WeatherSeries) -> np.ndarray:
    """Dynamic ampacity (A), shape (hours, lines), from the measured weather of each hour."""
    lines, hours = len(conductors), weather.hours
    span = _spans(conductors * hours, np.tile(np.asarray(azimuth_deg, float), hours), weather.latitude_deg,
                  weather.longitude_deg, weather.altitude_m)

    def per_hour(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, lines)

    measured = linerate.WeatherWithSolarRadiation(
        air_temperature=per_hour(weather.air_temperature_c),
        wind_direction=per_hour(np.radians(weather.wind_direction_deg)),
        wind_speed=per_hour(weather.wind_speed_m_s),
        ground_albedo=GROUND_ALBEDO,
        diffuse_radiation_intensity=per_hour(weather.dhi_w_m2),
        direct_radiation_intensity=per_hour(weather.dni_w_m2),
    )
    model = IEEE738MeasuredSolar(span, measured, per_hour(weather.time_utc))
    ampacity = model.compute_steady_state_ampacity(MAX_CONDUCTOR_TEMPERATURE_C)
    return np.asarray(ampacity, float).reshape(hours, lines)


def rating_factors(conductors: list[ConductorType], azimuth_deg: np.ndarray, weather: WeatherSeries,
                   assumption: StaticWeather = StaticWeather()) -> np.ndarray:
    """Dynamic over static ampacity, shape (hours, lines): what a DTR device lets a line carry each hour."""
    static = static_ampacity_a(conductors, azimuth_deg, weather.latitude_deg, weather.longitude_deg,
                               weather.altitude_m, assumption)
    return dynamic_ampacity_a(conductors, azimuth_deg, weather) / static[None, :]
