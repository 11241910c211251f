"""The local identity provider: an RSA signing key kept in `.local/jwt/`, tokens signed with it, and
the verification the local gateway does in place of API Gateway's JWT authorizer.

On AWS the HTTP API's JWT authorizer checks each token against the issuer's keys (RS256), its
issuer, audience and expiry, then hands the verified claims to the function. Locally the issuer is
this module; the key is generated on first use and kept, so a token stays valid across restarts
until it expires.

    python -m local.tokens --user learner-01                  # a demo user of ACME, by handle
    python -m local.tokens --user globex:admin --ttl 600      # another organization's user
    python -m local.tokens --user 5f1c...-uuid                # any user id
    python -m local.tokens --user trainer-01 --role trainer --curl /v1/users/<id>/analytics
    python -m local.tokens --client demo-ingest-acme --scope ingest   # a platform service

The token is printed on stdout (so `TOKEN=$(python -m local.tokens --user learner-01)` works);
`--curl PATH` prints a ready curl command instead.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local import demo_ids, state
from local.paths import STATE

KEY_DIR = STATE / "jwt"
KEY_FILE = KEY_DIR / "signing-key.pem"
ISSUER = "https://idp.ms8.localhost"
AUDIENCE = "ms8-local"
ALGORITHM = "RS256"  # API Gateway's JWT authorizer accepts RSA-signed tokens only
USER_CLIENT_ID = "ms8-local-web"  # the app client a user's token was issued to
SCOPE_PREFIX = os.environ.get("SCOPE_PREFIX", "ms8/")
DEFAULT_TTL = 12 * 3600


@lru_cache(maxsize=1)
def private_key() -> rsa.RSAPrivateKey:
    """The local signing key; generated once (safely when several processes race for it)."""
    if not KEY_FILE.exists():
        KEY_DIR.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, tmp = tempfile.mkstemp(dir=KEY_DIR, prefix=".key-")
        try:
            os.write(fd, pem)
            os.close(fd)
            os.link(tmp, KEY_FILE)  # atomic: the first writer wins, the others read its key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    loaded = serialization.load_pem_private_key(KEY_FILE.read_bytes(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded


def public_key() -> rsa.RSAPublicKey:
    return private_key().public_key()


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


@lru_cache(maxsize=1)
def key_id() -> str:
    der = public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def jwks() -> dict[str, Any]:
    """The issuer's public keys, as an OIDC provider publishes them (`/.well-known/jwks.json`)."""
    numbers = public_key().public_numbers()
    return {"keys": [{"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": key_id(),
                      "n": _b64(numbers.n), "e": _b64(numbers.e)}]}


def sign(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, private_key(), algorithm=ALGORITHM, headers={"kid": key_id()})


def user_token(user_id: uuid.UUID | str, ttl: int = DEFAULT_TTL, **extra: Any) -> str:
    """A user's access token (what the platform's sign-in hands the web and mobile apps)."""
    now = int(time.time())
    return sign({
        "iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "client_id": USER_CLIENT_ID,
        "token_use": "access", "iat": now, "exp": now + ttl, "jti": str(uuid.uuid4()), **extra,
    })


def service_token(client_id: str, scopes: list[str], ttl: int = DEFAULT_TTL) -> str:
    """A platform service's client-credentials token carrying `<prefix><scope>` scopes."""
    now = int(time.time())
    return sign({
        "iss": ISSUER, "aud": AUDIENCE, "sub": client_id, "client_id": client_id, "token_use": "access",
        "scope": " ".join(SCOPE_PREFIX + s for s in scopes), "iat": now, "exp": now + ttl,
        "jti": str(uuid.uuid4()),
    })


def resolve_user(ref: str) -> uuid.UUID:
    """A user id from a UUID or a demo handle: `learner-01` (ACME) or `globex:admin`."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    org, _, handle = ref.rpartition(":")
    return demo_ids.user_id(org or demo_ids.ACME, handle)


class InvalidToken(Exception):
    """The authorizer refuses the request (401); the message says why, as AWS's header does."""


def _claim_text(value: Any) -> str:
    """API Gateway hands every claim to the function as a string (arrays as `[a b]`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: dict[str, str]
    exp: int
    nbf: int


class Verifier:
    """The HTTP API JWT authorizer: signature (RS256, this issuer's key), `iss`, `aud` (or
    `client_id` when a token has no `aud`, as AWS does), `exp`, `nbf`.

    A verified token is remembered by its exact text (a changed byte is another key), so
    repeated requests with one token skip the RSA check; expiry is still checked every time.
    """

    def __init__(self, issuer: str = ISSUER, audiences: tuple[str, ...] = (AUDIENCE,), cache_size: int = 4096) -> None:
        self.issuer = issuer
        self.audiences = audiences
        self.key = public_key()
        self.cache_size = cache_size
        self._cache: dict[str, _Verified] = {}

    def verify(self, authorization: str | None) -> dict[str, str]:
        """The claims of a valid `Authorization` header value (`Bearer <jwt>` or the bare jwt)."""
        if not authorization:
            raise InvalidToken("no token")
        scheme, _, rest = authorization.strip().partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
        now = time.time()
        known = self._cache.get(token)
        if known is None:
            known = self._check(token)
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[token] = known
        if now >= known.exp:
            raise InvalidToken("the token has expired")
        if now < known.nbf:
            raise InvalidToken("the token is not valid yet")
        return known.claims

    def _check(self, token: str) -> _Verified:
        try:
            claims = jwt.decode(
                token, self.key, algorithms=[ALGORITHM], issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False, "verify_exp": False,
                         "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        if not audiences and claims.get("client_id"):
            audiences = [str(claims["client_id"])]
        if not set(audiences) & set(self.audiences):
            raise InvalidToken("invalid audience")
        try:
            exp, nbf = int(claims["exp"]), int(claims.get("nbf", 0))
        except (TypeError, ValueError):
            raise InvalidToken("invalid exp or nbf claim") from None
        return _Verified({k: _claim_text(v) for k, v in claims.items()}, exp, nbf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.tokens", description=__doc__.split("\n\n")[0])
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id, or a demo handle: learner-01, trainer-02, admin, globex:learner-03")
    who.add_argument("--client", help="a platform service's client id (with --scope)")
    parser.add_argument("--scope", action="append", choices=["ingest", "directory"], default=[],
                        help="a platform scope for --client (repeatable)")
    parser.add_argument("--role", choices=["learner", "trainer", "org_admin"],
                        help="the X-Active-Role to send (roles come from the database, not the token)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="seconds until it expires (default 12 h)")
    parser.add_argument("--curl", metavar="PATH", help="print a curl command for PATH instead of the token")
    parser.add_argument("--url", help="the API for --curl (default: the running `make run`'s, else MS8_URL, "
                                      "else port MS8_PORT or 3000)")
    args = parser.parse_args(argv)
    if args.client:
        if not args.scope:
            parser.error("--client needs at least one --scope")
        token = service_token(args.client, args.scope, args.ttl)
    else:
        token = user_token(resolve_user(args.user), args.ttl)
    if args.curl:
        role = f" -H 'X-Active-Role: {args.role}'" if args.role else ""
        url = args.url or state.api_url()
        print(f"curl -s{role} -H 'Authorization: Bearer {token}' {url.rstrip('/')}{args.curl}")
    else:
        print(token)
        if args.role:
            print(f"send it with -H 'X-Active-Role: {args.role}'", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
