"""Who may do what: API keys and JWTs, each with a role and the tenants it is bound to.

Writes always need a bearer token. Reads of the default tenant (open data) may
be anonymous when the operator allows it (``HOTOKU_ANONYMOUS_READ``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt
from sqlalchemy import text

from hotoku.broker.errors import Forbidden, Unauthorized
from hotoku.broker.model import now_iso

#: What each role may do. "manage": contexts, purge, credentials.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "subscribe", "manage", "admin"}),
    "operator": frozenset({"read", "write", "subscribe", "manage"}),
    "service": frozenset({"read", "write", "subscribe"}),
    "device": frozenset({"read", "write"}),
    "resident": frozenset({"read", "write"}),
    "reader": frozenset({"read", "subscribe"}),
}
ANONYMOUS_SCOPES = frozenset({"read"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    scopes: frozenset[str]
    tenants: frozenset[str]  # "*" = every tenant

    def require(self, scope: str, tenant: str) -> None:
        if scope not in self.scopes:
            if self.role == "anonymous":
                raise Unauthorized(f"this operation needs a bearer token with the {scope!r} scope",
                                   field="Authorization")
            raise Forbidden(f"role {self.role!r} may not {scope}", field="Authorization")
        if "*" not in self.tenants and tenant not in self.tenants:
            raise Forbidden(f"this credential is not bound to tenant {tenant or '(default)'!r}",
                            field="NGSILD-Tenant")


ANONYMOUS = Principal("anonymous", "anonymous", ANONYMOUS_SCOPES, frozenset({""}))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    def __init__(self, store, *, admin_token: str | None, jwt_secret: str, anonymous_read: bool) -> None:
        self.store = store
        self.admin_token = admin_token
        self.jwt_secret = jwt_secret
        self.anonymous_read = anonymous_read
        self._cache: dict[str, Principal] = {}

    def create_key(self, name: str, role: str, tenants: list[str]) -> str:
        if role not in ROLE_SCOPES:
            raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLE_SCOPES)}")
        key = "htk_" + secrets.token_urlsafe(32)
        import orjson

        with self.store.write() as tx:
            tx.conn.execute(text("INSERT INTO credentials (key_hash, name, role, tenants, created_at) "
                                 + ("VALUES (:h, :n, :r, CAST(:t AS jsonb), :c)" if self.store.dialect == "postgresql"
                                    else "VALUES (:h, :n, :r, :t, :c)")),
                            {"h": hash_key(key), "n": name, "r": role, "t": orjson.dumps(tenants).decode(),
                             "c": now_iso()})
        return key

    def has_keys(self) -> bool:
        with self.store.read() as conn:
            return conn.execute(text("SELECT count(*) FROM credentials WHERE role = 'admin'")).scalar() > 0

    def make_jwt(self, sub: str, role: str, tenants: list[str], scopes: list[str] | None = None) -> str:
        claims: dict[str, object] = {"sub": sub, "role": role, "tenants": tenants}
        if scopes:
            claims["scope"] = " ".join(scopes)
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            return ANONYMOUS if self.anonymous_read else Principal("anonymous", "anonymous", frozenset(),
                                                                   frozenset())
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization must be 'Bearer <token>'", field="Authorization")
        cached = self._cache.get(token)
        if cached:
            return cached
        principal = self._resolve(token.strip())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def _resolve(self, token: str) -> Principal:
        if self.admin_token and hmac.compare_digest(token, self.admin_token):
            return Principal("admin", "admin", ROLE_SCOPES["admin"], frozenset({"*"}))
        if token.count(".") == 2:
            try:
                claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"])
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid JWT: {exc}", field="Authorization") from None
            role = claims.get("role", "reader")
            if role not in ROLE_SCOPES:
                raise Unauthorized(f"JWT role {role!r} is unknown", field="Authorization")
            scopes = ROLE_SCOPES[role]
            if "scope" in claims:
                scopes = scopes & frozenset(str(claims["scope"]).split())
            return Principal(str(claims.get("sub", "jwt")), role, scopes, frozenset(claims.get("tenants", [""])))
        with self.store.read() as conn:
            row = conn.execute(text("SELECT name, role, tenants FROM credentials WHERE key_hash = :h"),
                               {"h": hash_key(token)}).first()
        if row is None:
            raise Unauthorized("unknown bearer token", field="Authorization")
        import orjson

        tenants = orjson.loads(row.tenants) if isinstance(row.tenants, str) else row.tenants
        return Principal(row.name, row.role, ROLE_SCOPES[row.role], frozenset(tenants))
