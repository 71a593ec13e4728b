"""Money from a platform's decimal strings to integer minor units, exactly.

Platforms such as Shopify send amounts as decimal strings (``"19.99"``) next
to an ISO 4217 currency code. orderloom counts money in integer minor units
(cents), so the string is read with :class:`decimal.Decimal` and scaled by
the currency's exponent (EUR 2, JPY 0, KWD 3). Nothing is rounded: a string
the exponent cannot hold exactly is refused, as is anything that is not a
plain non-negative decimal string (numbers, exponents, signs, NaN).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping

from orderloom.runtime import IngestError, IngestReason

__all__ = ["CURRENCY_EXPONENTS", "MAX_MINOR_UNITS", "minor_units"]

_TWO = ("AED AUD BGN BRL CAD CHF CNY CZK DKK EGP EUR GBP HKD HUF IDR ILS INR MAD MXN MYR "
        "NGN NOK NZD PEN PHP PKR PLN QAR RON RSD SAR SEK SGD THB TRY TWD UAH USD ZAR")
_ZERO = "CLP ISK JPY KRW PYG UGX VND XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"

CURRENCY_EXPONENTS: Mapping[str, int] = {
    **{code: 2 for code in _TWO.split()},
    **{code: 0 for code in _ZERO.split()},
    **{code: 3 for code in _THREE.split()},
}
"""ISO 4217 minor-unit exponents of the currencies accepted (a currency not
listed is refused with ``unknown_currency``, never guessed)."""

MAX_MINOR_UNITS = 2**53 - 1
"""The largest amount kept, in minor units (exact in every JSON parser)."""

# A plain decimal: digits, optionally a point and more digits. No sign, no
# exponent, no spaces, no leading zeros (``"007"`` is not how money is written).
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,15})(?:\.([0-9]{1,12}))?")
# Enough digits for any string the pattern admits, and a trap should one ever be rounded.
_EXACT = decimal.Context(prec=40, traps=[decimal.Inexact, decimal.InvalidOperation])


def minor_units(value: object, currency: object, *, path: str) -> int:
    """``value`` (a decimal string) in minor units of ``currency``.

    Digits beyond the currency's exponent are accepted only when they are
    zeros (``"1500.00"`` JPY is 1500), since the amount is then still exact;
    any other digit there is refused rather than rounded.

    Args:
        value: the amount as the platform sent it.
        currency: its ISO 4217 code.
        path: where the amount is in the payload (for the error).

    Raises:
        IngestError: ``unknown_currency`` for a currency outside
            :data:`CURRENCY_EXPONENTS`; ``bad_money`` for anything but a
            plain non-negative decimal string the exponent holds exactly.
    """
    exponent = currency_exponent(currency, path=path)
    if not isinstance(value, str):
        raise IngestError(IngestReason.BAD_MONEY, "expected a decimal string such as "
                          f"\"19.99\", got {_kind(value)}", path=path)
    match = _DECIMAL.fullmatch(value)
    if match is None:
        raise IngestError(IngestReason.BAD_MONEY, "expected a plain non-negative decimal "
                          "string (no sign, exponent, spaces or leading zeros)", path=path)
    fraction = match.group(1) or ""
    if fraction[exponent:].strip("0"):
        raise IngestError(IngestReason.BAD_MONEY, f"more decimals than the currency's "
                          f"{exponent} allow", path=path)
    units = decimal.Decimal(value).scaleb(exponent, context=_EXACT)
    if units != units.to_integral_value(context=_EXACT) or units > MAX_MINOR_UNITS:
        raise IngestError(IngestReason.BAD_MONEY, "the amount is not exact in minor units or "
                          "is too large", path=path)
    return int(units)


def currency_exponent(currency: object, *, path: str) -> int:
    """The minor-unit exponent of ``currency``.

    Raises:
        IngestError: ``unknown_currency`` (the code is not quoted: it is
            payload text).
    """
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        raise IngestError(IngestReason.UNKNOWN_CURRENCY, "expected an ISO 4217 code from "
                          "the minor-units table", path=path)
    return CURRENCY_EXPONENTS[currency]


def _kind(value: object) -> str:
    """The JSON kind of ``value``, never the value itself."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
