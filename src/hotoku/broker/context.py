"""JSON-LD ``@context`` handling for the NGSI-LD broker (ETSI GS CIM 009 v1.8, clauses 4.4, 5.5.7, 6.3.5).

A request's ``@context`` (inline or from the Link header) is processed once by PyLD, so term definitions
follow JSON-LD 1.1, and then flattened into plain dicts held by a :class:`TermMap`. Everything after that
is a dict lookup, which keeps JSON-LD processing off the per-request path. The ETSI core context ships in
``contexts/`` and is never fetched; user contexts given by URL are fetched once (or served by the
``/jsonldContexts`` store) and cached.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from pyld import jsonld
from pyld.context_resolver import ContextResolver as _PyldContextResolver

from hotoku.broker.errors import BadRequestData, InvalidRequest, LdContextNotAvailable, NgsiError

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CORE_CONTEXT_ALIASES = frozenset(
    {
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        *(f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{minor}.jsonld" for minor in range(3, 9)),
    }
)
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
DEFAULT_FETCH_TIMEOUT = 2.0

ContextInput = str | dict[str, Any] | list[Any] | None
StoredLookup = Callable[[str], dict[str, Any] | None]

_CORE_DOCUMENT: dict[str, Any] = orjson.loads(
    files("hotoku.broker").joinpath("contexts", "ngsi-ld-core-context-v1.8.jsonld").read_bytes()
)
# Where a user context names the core (anywhere, even nested), it is served without @protected: the
# protected core is applied again last, giving it absolute precedence (5.5.7) without turning a user
# term that follows the core reference into a "protected term redefinition" error.
_UNPROTECTED_CORE: dict[str, Any] = {
    "@context": {k: v for k, v in _CORE_DOCUMENT["@context"].items() if k != "@protected"}
}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_TERM_CACHE_MAX = 10_000  # bounds the per-TermMap caches against clients sending endless new names


def _is_core(element: object) -> bool:
    return isinstance(element, str) and (element == CORE_CONTEXT_URL or element in CORE_CONTEXT_ALIASES)


def _shortest_least(candidates: list[str]) -> str:
    """JSON-LD's tie-break when several terms or compact IRIs fit: shortest, then lexicographically least."""
    return min(candidates, key=lambda s: (len(s), s))


class TermMap:
    """The processed form of one ``@context``: the user's terms plus the core context, which wins on clashes.

    ``expand``/``compact`` cover attribute names, type names and ``@vocab``-typed values. Both answer
    from a dict after the first call for a given string.
    """

    __slots__ = (
        "_compacted",
        "_defined",
        "_expanded",
        "_prefixes",
        "_vocab",
        "context_value",
        "link_url",
        "vocab_terms",
    )

    def __init__(
        self, active_ctx: Mapping[str, Any], context_value: str | list[Any], link_url: str | None
    ) -> None:
        mappings: Mapping[str, Any] = active_ctx["mappings"]
        self._defined = frozenset(mappings)
        self._vocab: str | None = active_ctx.get("@vocab")
        self._prefixes = {
            t: d["@id"] for t, d in mappings.items() if d and d.get("_prefix") and ":" not in t and d["@id"]
        }
        # Seeded with every defined term, and with the preferred term for every IRI (first compaction step).
        self._expanded: dict[str, str] = {t: d["@id"] for t, d in mappings.items() if d and d["@id"]}
        by_iri: dict[str, list[str]] = {}
        for term, d in mappings.items():
            if d and d["@id"] and not d.get("reverse"):
                by_iri.setdefault(d["@id"], []).append(term)
        self._compacted: dict[str, str] = {iri: _shortest_least(ts) for iri, ts in by_iri.items()}
        self.vocab_terms = frozenset(t for t, d in mappings.items() if d and d.get("@type") == "@vocab")
        """Terms whose values are themselves terms to expand (``"@type": "@vocab"``)."""
        self.context_value = context_value
        """What to echo as ``@context`` in ``application/ld+json`` responses."""
        self.link_url = link_url
        """URL for the Link header of ``application/json`` responses; None when the context was inline
        or several URLs (the caller then has to host it, e.g. via ``/jsonldContexts``)."""

    def expand(self, term: str) -> str:
        """Term, compact IRI or IRI to a full IRI, per JSON-LD 1.1 IRI expansion with ``vocab=true``."""
        iri = self._expanded.get(term)
        if iri is None:
            iri = self._expand_uncached(term)
            if len(self._expanded) < _TERM_CACHE_MAX:
                self._expanded[term] = iri
        return iri

    def compact(self, iri: str) -> str:
        """IRI to the term a client using this context expects: term, ``@vocab`` suffix, compact IRI, IRI.

        Unlike full JSON-LD term selection, ``@type``/``@container`` coercions are not weighed: an
        NGSI-LD attribute name has to come back as the client's term whatever its value looks like.
        """
        term = self._compacted.get(iri)
        if term is None:
            term = self._compact_uncached(iri)
            if len(self._compacted) < _TERM_CACHE_MAX:
                self._compacted[iri] = term
        return term

    def _expand_uncached(self, term: str) -> str:
        if term.startswith("@"):
            return term
        if term in self._defined:  # defined, but not in _expanded: mapped to null
            raise BadRequestData(f"Term {term!r} is mapped to null by the @context", field=term)
        prefix, colon, suffix = term.partition(":")
        if colon and prefix:
            if prefix == "_" or suffix.startswith("//"):
                return term
            if prefix in self._prefixes:
                return self._prefixes[prefix] + suffix
            if _SCHEME.match(term):
                return term
        return term if self._vocab is None else self._vocab + term

    def _compact_uncached(self, iri: str) -> str:
        # The core @vocab is a fallback (4.4): default-context IRIs compact to the bare name even when a
        # user @vocab replaced it, since that is the name they were created with.
        for vocab in (self._vocab, DEFAULT_VOCAB):
            if vocab and iri.startswith(vocab) and iri != vocab and iri[len(vocab) :] not in self._defined:
                return iri[len(vocab) :]
        curies = [
            f"{p}:{iri[len(base) :]}"
            for p, base in self._prefixes.items()
            if iri.startswith(base) and iri != base
        ]
        curies = [c for c in curies if c not in self._defined]
        return _shortest_least(curies) if curies else iri


class ContextResolver:
    """Turns a request's ``@context`` into a cached :class:`TermMap`; thread-safe.

    Remote contexts come from ``lookup_stored`` (contexts registered through ``/jsonldContexts``) or
    are fetched once over HTTP and kept in memory; the ETSI core and its aliases are always local.
    """

    def __init__(
        self,
        *,
        lookup_stored: StoredLookup | None = None,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
        maxsize: int = 256,
    ) -> None:
        self._lookup_stored = lookup_stored
        self._timeout = timeout
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._term_maps: OrderedDict[bytes, TermMap] = OrderedDict()
        self._fetched: dict[str, dict[str, Any]] = {}
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._processor = jsonld.JsonLdProcessor()

    def resolve(self, ctx: ContextInput) -> TermMap:
        """TermMap for ``ctx`` (the value of ``@context``, or the Link header URL, or None)."""
        key = self._cache_key(ctx)
        with self._lock:
            cached = self._term_maps.get(key)
            if cached is not None:
                self._term_maps.move_to_end(key)
                return cached
        built = self._build(ctx)
        with self._lock:
            cached = self._term_maps.setdefault(key, built)  # a racing thread may have won: keep one
            self._term_maps.move_to_end(key)
            while len(self._term_maps) > self._maxsize:
                self._term_maps.popitem(last=False)
        return cached

    def invalidate(self, url: str) -> None:
        """Forget ``url``'s document and every TermMap (call after /jsonldContexts changes it)."""
        with self._lock:
            self._fetched.pop(url, None)
            self._term_maps.clear()

    @staticmethod
    def _cache_key(ctx: ContextInput) -> bytes:
        """Canonical JSON, so equal contexts share one TermMap whatever their key order."""
        try:
            return orjson.dumps(ctx, option=orjson.OPT_SORT_KEYS)
        except TypeError as exc:
            raise InvalidRequest(f"@context is not valid JSON: {exc}", field="@context") from exc

    def _build(self, ctx: ContextInput) -> TermMap:
        elements = [] if ctx is None else ctx if isinstance(ctx, list) else [ctx]
        for element in elements:
            if not (element is None or isinstance(element, str | dict)):
                raise InvalidRequest("@context members must be URLs or objects", field="@context")
        user = [e for e in elements if not _is_core(e)]
        options = {
            "documentLoader": self._load_document,
            "contextResolver": _PyldContextResolver({}, self._load_document),
        }
        active = self._processor.process_context({}, None, options)  # None: PyLD's initial context
        user_vocab: str | None = None
        try:
            # One element at a time (as JSON-LD does) to see which @vocab the user's own contexts set.
            for element in elements:
                before = active.get("@vocab")
                active = self._processor.process_context(active, [copy.deepcopy(element)], options)
                if not _is_core(element) and active.get("@vocab") != before:
                    user_vocab = active.get("@vocab")
            # The core overrides even terms a user context protected: it has absolute precedence (5.5.7).
            # PyLD only offers that through its internal entry point (the public one is a thin wrapper).
            active = self._processor._process_context(
                active, copy.deepcopy(_CORE_DOCUMENT), {**options, "base": ""}, override_protected=True
            )
        except jsonld.JsonLdError as exc:
            raise _unwrap(exc) from exc
        if user_vocab is not None:  # the core @vocab is only the fallback (4.4)
            active = {**active, "@vocab": user_vocab}
        if not user:
            return TermMap(active, CORE_CONTEXT_URL, CORE_CONTEXT_URL)
        single_url = user[0] if len(user) == 1 and isinstance(user[0], str) else None
        return TermMap(active, [*user, CORE_CONTEXT_URL], single_url)

    def _load_document(self, url: str, _options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """PyLD documentLoader: the only way PyLD sees a remote document, so it never hits the network."""
        document = _UNPROTECTED_CORE if _is_core(url) else self._remote_document(url)
        # PyLD rewrites relative URLs inside the document it gets: hand it a copy of the cached one.
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(document)}

    def _remote_document(self, url: str) -> dict[str, Any]:
        if self._lookup_stored is not None:
            stored = self._lookup_stored(url)
            if stored is not None:
                return stored
        with self._lock:
            document = self._fetched.get(url)
            if document is not None:
                return document
            fetch_lock = self._fetch_locks.setdefault(url, threading.Lock())
        try:
            with fetch_lock:  # one fetch per URL even when many requests name it at once
                with self._lock:
                    document = self._fetched.get(url)
                if document is None:
                    document = self._fetch(url)
                    with self._lock:
                        self._fetched[url] = document
            return document
        finally:
            with self._lock:
                self._fetch_locks.pop(url, None)

    def _fetch(self, url: str) -> dict[str, Any]:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            raise InvalidRequest(f"@context entry {url!r} is not an absolute URL", field="@context")
        if parts.scheme not in ("http", "https"):
            raise LdContextNotAvailable(f"@context {url} cannot be dereferenced (scheme {parts.scheme})")
        try:
            response = httpx.get(
                url,
                timeout=self._timeout,
                follow_redirects=True,
                headers={"Accept": "application/ld+json, application/json;q=0.9"},
            )
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(f"@context {url} could not be fetched: {exc!r}") from exc
        if not response.is_success:
            raise LdContextNotAvailable(f"@context {url} could not be fetched: HTTP {response.status_code}")
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise LdContextNotAvailable(f"@context {url} is not JSON") from exc
        if not isinstance(document, dict) or "@context" not in document:
            raise LdContextNotAvailable(f"@context {url} has no @context member")
        return document


def _unwrap(exc: jsonld.JsonLdError) -> Exception:
    """Our loader's errors reach us wrapped by PyLD; anything else is a bad context."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, NgsiError):
            return cause
        details = getattr(cause, "details", None)
        nested = details.get("cause") if isinstance(details, dict) else None
        cause = getattr(cause, "cause", None) or nested or cause.__cause__
    reason = f"{exc.args[0]} ({exc.code})" if exc.code else str(exc.args[0])
    return InvalidRequest(f"Invalid @context: {reason}", field="@context")


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_LINK_VALUE = re.compile(r"\s*<([^>]*)>\s*")
# Unquoted values are read leniently (RFC 8288 wants a token, but clients send bare rel URIs).
_LINK_PARAM = re.compile(rf';\s*({_TOKEN})\s*(?:=\s*([^\s;,"]+|"(?:[^"\\]|\\.)*"))?\s*')


def link_header_context(link: str | None) -> str | None:
    """URL of the ``rel="http://www.w3.org/ns/json-ld#context"`` link in a Link header (RFC 8288), if any.

    Raises BadRequestData for a malformed header or more than one context link (JSON-LD 1.1 API 9.4.1).
    """
    if link is None or not link.strip():
        return None
    found: list[str] = []
    pos = 0
    while pos < len(link):
        value = _LINK_VALUE.match(link, pos)
        if value is None:
            raise BadRequestData(f"Malformed Link header: {link!r}", field="Link")
        pos = value.end()
        rels: list[str] = []
        while (param := _LINK_PARAM.match(link, pos)) is not None:
            pos = param.end()
            name, raw = param.group(1).lower(), param.group(2) or ""
            if name == "rel":
                unquoted = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
                rels.extend(unquoted.split())
        if JSONLD_CONTEXT_REL in rels:
            found.append(value.group(1).strip())
        if pos < len(link):
            if link[pos] != ",":
                raise BadRequestData(f"Malformed Link header: {link!r}", field="Link")
            pos += 1
    if len(found) > 1:
        raise BadRequestData("Link header names more than one JSON-LD context", field="Link")
    return found[0] if found else None


def make_link_header(url: str) -> str:
    """Link header value pointing a plain-JSON client at the ``@context`` of the response."""
    return f'<{url}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'
