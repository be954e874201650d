"""Retail tariffs of the utility company: flat, or time of use.

The flat tariff charges ``retail_price`` in every quarter hour. The time-of-use tariff (``tariff = "tou"``)
scales it by the hour of day, a shape common to residential TOU tariffs:

=============================  ==========
hours (local time)             factor
=============================  ==========
00:00-07:00 and 22:00-24:00    0.6 (off-peak)
07:00-17:00 and 21:00-22:00    1.0 (shoulder)
17:00-21:00                    1.5 (evening peak)
=============================  ==========

With the default 22 ct/kWh that is 13.2 / 22 / 33 ct/kWh. The feed-in price stays flat. A storage unit is
worth something at flat prices only where PV exceeds load (stored surplus replaces retail purchases later);
with TOU it also shifts purchases from the peak to the night, in every season.
"""

from __future__ import annotations

TARIFFS = ("flat", "tou")
#: (first hour, last hour + 1, factor) of the time-of-use shape; hours not listed are at 1.0.
TOU_SHAPE = ((0, 7, 0.6), (17, 21, 1.5), (22, 24, 0.6))
INTERVALS_PER_HOUR = 4


def tariff_factor(tariff: str, interval: int, dt_h: float = 0.25) -> float:
    """The retail price factor of quarter hour ``interval`` (index into the profile year)."""
    if tariff == "flat":
        return 1.0
    hour = int(interval * dt_h) % 24
    return next((f for lo, hi, f in TOU_SHAPE if lo <= hour < hi), 1.0)


def min_factor(tariff: str) -> float:
    """The lowest factor of the tariff: the feed-in price must not exceed the cheapest retail price."""
    return 1.0 if tariff == "flat" else min(1.0, *(f for _, _, f in TOU_SHAPE))


def max_factor(tariff: str) -> float:
    return 1.0 if tariff == "flat" else max(1.0, *(f for _, _, f in TOU_SHAPE))
