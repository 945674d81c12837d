"""Where rate tokens and quota units are leased from: Redis (shared by every process) or memory.

One atomic call refills the airline's token bucket, grants up to `want` tokens (and as many
quota units, for hard quotas), and takes back quota units an earlier lease did not use.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

# KEYS: bucket hash, quota counter. ARGV: rate per second, burst, want, want quota (0: none),
# quota limit, quota ttl (s), returned quota units, quota start value (-1: unknown).
LEASE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want_q, limit, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local returned, init = tonumber(ARGV[7]), tonumber(ARGV[8])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local used = -1
if want_q > 0 or returned > 0 then
  local u = redis.call('GET', KEYS[2])
  if u then used = tonumber(u) elseif init >= 0 then used = init else return {-1, 0, tostring(tokens), -1} end
  used = math.max(0, used - returned)
end
local grant = math.min(want, math.floor(tokens))
local grant_q = 0
if want_q > 0 then
  grant_q = math.max(0, math.min(grant, want_q, limit - used))
  grant = grant_q
  used = used + grant_q
end
tokens = tokens - grant
if want > 0 then
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 5)
end
if used >= 0 then redis.call('SET', KEYS[2], used, 'EX', ttl) end
return {grant, grant_q, tostring(tokens), used}
"""


@dataclass(frozen=True, slots=True)
class Grant:
    tokens: int
    quota: int
    bucket_left: float
    quota_used: int  # -1 when the call did not touch the quota


class QuotaUnknown(Exception):
    """The shared quota counter is missing (new month, or Redis restarted): start it from the database."""


class LeaseStore(Protocol):
    calls: int

    async def lease(
        self,
        airline: str,
        period: str,
        *,
        rate: float,
        burst: int,
        want: int,
        want_quota: int,
        quota: int,
        quota_ttl: int,
        returned: int,
        quota_start: int,
    ) -> Grant: ...


class RedisLeaseStore:
    def __init__(self, redis: object) -> None:
        self.redis = redis
        self.script = redis.register_script(LEASE_SCRIPT)  # type: ignore[attr-defined]
        self.calls = 0

    async def lease(
        self,
        airline: str,
        period: str,
        *,
        rate: float,
        burst: int,
        want: int,
        want_quota: int,
        quota: int,
        quota_ttl: int,
        returned: int,
        quota_start: int,
    ) -> Grant:
        self.calls += 1
        keys = [f"skycart:rate:{{{airline}}}", f"skycart:quota:{{{airline}}}:{period}"]
        args = [repr(rate), burst, want, want_quota, quota, quota_ttl, returned, quota_start]
        tokens, granted_quota, left, used = await self.script(keys=keys, args=args)
        if int(tokens) < 0:
            raise QuotaUnknown(airline)
        return Grant(int(tokens), int(granted_quota), float(left), int(used))


class MemoryLeaseStore:
    """The same bucket and counter, for one process without Redis."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float]] = {}
        self.used: dict[tuple[str, str], int] = {}
        self.calls = 0

    async def lease(
        self,
        airline: str,
        period: str,
        *,
        rate: float,
        burst: int,
        want: int,
        want_quota: int,
        quota: int,
        quota_ttl: int,
        returned: int,
        quota_start: int,
    ) -> Grant:
        self.calls += 1
        now = time.monotonic()
        tokens, ts = self.buckets.get(airline, (float(burst), now))
        tokens = min(burst, tokens + max(0.0, now - ts) * rate)
        used = -1
        if want_quota > 0 or returned > 0:
            if (airline, period) not in self.used and quota_start < 0:  # as Redis after a restart
                raise QuotaUnknown(airline)
            used = max(0, self.used.get((airline, period), quota_start) - returned)
        grant = min(want, math.floor(tokens))
        granted_quota = 0
        if want_quota > 0:
            granted_quota = max(0, min(grant, want_quota, quota - used))
            grant = granted_quota
            used += granted_quota
        if want > 0:
            self.buckets[airline] = (tokens - grant, now)
        if used >= 0:
            self.used[(airline, period)] = used
        return Grant(grant, granted_quota, tokens - grant, used)
