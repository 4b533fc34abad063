"""Per-country send prices for cost estimates (``crm/config/prices.yaml`` or ``PRICES_FILE``)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

DEFAULT_PRICES = Path(__file__).parent / "config" / "prices.yaml"
CHANNELS = ("sms", "whatsapp")


class PriceTableError(ValueError):
    pass


@dataclass(frozen=True)
class PriceTable:
    currency: str
    default: dict[str, Decimal]
    countries: dict[str, dict[str, Decimal]]

    def unit_price(self, channel: str, region: str | None) -> Decimal:
        """Per SMS segment, or per WhatsApp message, to a number in ``region``."""
        return self.countries.get(region or "", self.default).get(channel, self.default[channel])

    @classmethod
    def parse(cls, raw: object) -> PriceTable:
        if not isinstance(raw, dict) or not isinstance(raw.get("default"), dict):
            raise PriceTableError("the price table needs 'currency' and 'default'")

        def prices(spec: object, where: str) -> dict[str, Decimal]:
            if not isinstance(spec, dict):
                raise PriceTableError(f"{where}: a mapping of channel to price")
            try:
                return {str(k): Decimal(str(v)) for k, v in spec.items() if k in CHANNELS}
            except InvalidOperation:
                raise PriceTableError(f"{where}: prices are numbers") from None

        default = prices(raw["default"], "default")
        if set(default) != set(CHANNELS):
            raise PriceTableError("default needs a price for sms and whatsapp")
        countries = {
            str(region).upper(): prices(spec, str(region))
            for region, spec in (raw.get("countries") or {}).items()
        }
        return cls(str(raw.get("currency", "USD")), default, countries)


@functools.cache
def load_prices(path: Path | None = None) -> PriceTable:
    configured = os.environ.get("PRICES_FILE", "").strip()
    path = path or (Path(configured) if configured else DEFAULT_PRICES)
    return PriceTable.parse(yaml.safe_load(path.read_text(encoding="utf-8")))
