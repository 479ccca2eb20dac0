"""CPU and memory quantities as small exact types.

Kubernetes writes CPU as cores ("2", "0.5") or millicores ("500m") and memory
as bytes with a suffix ("4Gi", "512Mi", "1G"). Here they are parsed once into
integers (millicores, bytes) so that comparing a request with a limit is exact,
and written back in Kubernetes' own notation only when a manifest is made.

Parsing raises `ValueError` with a message that shows the accepted forms; the
callers add which key or option held the value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Sanity bounds: anything above is a typo or an attack, not a real request.
MAX_CPU_MILLICORES = 4096 * 1000
MAX_BYTES = 2**50  # 1 PiB

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_CPU_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m)?$")


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as e:  # pragma: no cover - the regexes admit only digits
        raise ValueError(f"{text!r} is not a number") from e


@dataclass(frozen=True, order=True)
class Cpu:
    """A number of CPU cores, held exactly as millicores."""

    millicores: int

    @classmethod
    def parse(cls, value: object) -> Cpu:
        """Parse 2, 0.5, "2", "1.5" or "500m" (zero is allowed, negative is not)."""
        hint = "write CPU as cores like 2 or 0.5, or millicores like \"500m\""
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{value!r} is not a CPU amount; {hint}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is not a CPU amount; {hint}")
        text = str(value).strip()
        match = _CPU_RE.match(text)
        if not match:
            raise ValueError(f"{value!r} is not a CPU amount; {hint}")
        number = _decimal(match.group(1))
        millicores = number if match.group(2) else number * 1000
        if millicores != millicores.to_integral_value():
            raise ValueError(f"{value!r} is finer than one millicore; {hint}")
        if millicores > MAX_CPU_MILLICORES:
            raise ValueError(f"{value!r} is more than {MAX_CPU_MILLICORES // 1000} cores")
        return cls(int(millicores))

    def __add__(self, other: Cpu) -> Cpu:
        return Cpu(self.millicores + other.millicores)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.millicores - other.millicores)

    @property
    def cores(self) -> float:
        return self.millicores / 1000

    def k8s(self) -> str:
        """Kubernetes notation: whole cores as "2", otherwise millicores as "500m"."""
        if self.millicores % 1000 == 0:
            return str(self.millicores // 1000)
        return f"{self.millicores}m"

    def __str__(self) -> str:
        cores = f"{self.cores:g}"
        return f"{cores} CPU" if self.millicores == 1000 else f"{cores} CPUs"


@dataclass(frozen=True, order=True)
class Memory:
    """An amount of memory or storage, held exactly as bytes."""

    bytes: int

    @classmethod
    def parse(cls, value: object) -> Memory:
        """Parse "4Gi", "512Mi", "1.5Gi", "1G" or a whole number of bytes."""
        hint = 'write memory like "4Gi", "512Mi" or "1G" (or a whole number of bytes)'
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"{value!r} is not an amount of memory; {hint}")
        text = str(value).strip()
        match = _MEMORY_RE.match(text)
        if not match:
            raise ValueError(f"{value!r} is not an amount of memory; {hint}")
        number = _decimal(match.group(1))
        unit = match.group(2)
        scale = _BINARY.get(unit) or _DECIMAL.get(unit) or 1
        total = number * scale
        if total != total.to_integral_value():
            raise ValueError(f"{value!r} is not a whole number of bytes; {hint}")
        if total > MAX_BYTES:
            raise ValueError(f"{value!r} is more than 1Pi")
        return cls(int(total))

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.bytes + other.bytes)

    def __sub__(self, other: Memory) -> Memory:
        return Memory(self.bytes - other.bytes)

    def k8s(self) -> str:
        """Kubernetes notation, the largest exact suffix: "4Gi", "1500M", "123"."""
        if self.bytes == 0:
            return "0"
        for table in (_BINARY, _DECIMAL):
            for unit, scale in sorted(table.items(), key=lambda kv: -kv[1]):
                if self.bytes % scale == 0:
                    return f"{self.bytes // scale}{unit}"
        return str(self.bytes)

    def __str__(self) -> str:
        for unit, scale in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if self.bytes >= scale:
                return f"{self.bytes / scale:g} {unit}B"
        return f"{self.bytes} B"
