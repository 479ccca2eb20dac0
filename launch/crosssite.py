"""The event stream starts builds and servers, so only this service's own launch page
may open it. Pure (the secret and the clock are passed in).

Two checks, both needed on every `GET /build/...`:

- the browser's own headers: `Sec-Fetch-Site` must be `same-origin` (or absent, for
  non-browser clients and old browsers), and an `Origin` header, when sent, must be
  this service's origin. A page on another site (another host, port or scheme) that
  points an `EventSource`, an `<img>` or a frame at the stream is refused;
- a launch token: the launch page (`/v2/...`) puts an HMAC of the stream's path and an
  expiry time into the stream's URL. Another site cannot read the page (no CORS), so
  it cannot forge the token, even with a browser that sends neither header.

A token is valid for `TOKEN_LIFETIME` seconds, for one path and for the user who loaded
the page (`subject`) only; the secret is made at start-up, so a page loaded before a
restart of `dsbuild serve` has to be reloaded.

Behind the hub's proxy (`/services/dsbuild/`, the Helm release) the launch page shares
its origin with the hub and with every user's server, so the headers cannot tell a
server's page from the launch page. Two more checks keep a page from a user's server
(code in a notebook, an extension) from launching as whoever opens it:

- the launch page, which hands out tokens, is served to a top-level navigation only
  (`page_request_reason`): a script's `fetch()` of it, or a frame, gets no token; a
  navigation is what a launch link is anyway, shown to the user, who sees what it
  launches;
- a token names the user it was made for, so a token another user (the page's author)
  got from their own launch page starts nothing in the visitor's browser."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

TOKEN_LIFETIME = 600
TOKEN_ARG = "launch_token"
SAME_ORIGIN = ("same-origin", "none")


def _mac(secret: bytes, path: str, expires: int, nonce: str) -> str:
    return hmac.new(secret, f"{expires}\n{nonce}\n{path}".encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: bytes, path: str, now: float, lifetime: int = TOKEN_LIFETIME) -> str:
    """A token for the stream of launch `path` (a LaunchSpec's spec_path), valid `lifetime` seconds."""
    expires = int(now) + lifetime
    nonce = secrets.token_hex(8)
    return f"{expires}.{nonce}.{_mac(secret, path, expires, nonce)}"


def token_valid(secret: bytes, path: str, token: str, now: float) -> bool:
    expires_text, _, rest = token.partition(".")
    nonce, _, mac = rest.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or len(nonce) != 16:
        return False
    expires = int(expires_text)
    return expires >= now and hmac.compare_digest(mac, _mac(secret, path, expires, nonce))


def subject(path: str, user: str | None) -> str:
    """What a token is for: one launch path (a LaunchSpec's spec_path) of one user (None: anonymous mode)."""
    return f"{user or ''}\n{path}"


def page_request_reason(headers: Mapping[str, str]) -> str | None:
    """Why this request for a launch page is not a browser's top-level navigation, or None.
    Clients that send no Sec-Fetch headers (curl, old browsers) are let through: what
    protects the stream from them is the token and the Origin check."""
    mode = (headers.get("Sec-Fetch-Mode") or "navigate").lower()
    dest = (headers.get("Sec-Fetch-Dest") or "document").lower()
    if mode != "navigate" or dest != "document":
        return f"a launch page opens only as a page of its own (not a {dest} of a {mode} request)"
    return None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_reason(headers: Mapping[str, str], own_origins: Iterable[str]) -> str | None:
    """Why this request did not come from one of `own_origins`' pages, or None."""
    fetch_site = (headers.get("Sec-Fetch-Site") or "").lower()
    if fetch_site and fetch_site not in SAME_ORIGIN:
        return f"the launch stream was requested from another site ({fetch_site})"
    origin = (headers.get("Origin") or "").lower()
    if origin and origin not in {o.lower().rstrip("/") for o in own_origins}:
        return "the launch stream was requested from another site"
    return None


class LaunchTokens:
    """Tokens for streams, each redeemable once (a page load is one launch), with a
    bounded memory of the tokens already redeemed."""

    def __init__(self, secret: bytes, lifetime: int = TOKEN_LIFETIME, max_remembered: int = 100_000):
        self.secret = secret
        self.lifetime = lifetime
        self.max_remembered = max_remembered
        self._used: dict[str, float] = {}

    def issue(self, path: str, now: float) -> str:
        return make_token(self.secret, path, now, self.lifetime)

    def redeem(self, path: str, token: str, now: float) -> bool:
        if not token or token in self._used or not token_valid(self.secret, path, token, now):
            return False
        if len(self._used) >= self.max_remembered:
            self._used = {t: exp for t, exp in self._used.items() if exp >= now}
            while len(self._used) >= self.max_remembered:  # all still valid: forget the oldest
                self._used.pop(next(iter(self._used)))
        self._used[token] = now + self.lifetime
        return True
