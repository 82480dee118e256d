"""Tests for hotoku.broker.context: @context processing, caching, fetching and Link headers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pyld import jsonld

from hotoku.broker.context import (
    CORE_CONTEXT_ALIASES,
    CORE_CONTEXT_URL,
    DEFAULT_VOCAB,
    ContextResolver,
    link_header_context,
    make_link_header,
)
from hotoku.broker.errors import BadRequestData, InvalidRequest, LdContextNotAvailable

NGSI = "https://uri.etsi.org/ngsi-ld/"
EX = "http://example.org/"
REL = "http://www.w3.org/ns/json-ld#context"

_DOCS: dict[str, tuple[int, bytes]] = {
    "/ctx.jsonld": (200, json.dumps({"@context": {"ex": EX, "speed": "ex:speed"}}).encode()),
    "/other.jsonld": (200, json.dumps({"@context": {"ex": EX, "Car": "ex:Car"}}).encode()),
    "/nested.jsonld": (200, json.dumps({"@context": ["/ctx.jsonld", {"Truck": "ex:Truck"}]}).encode()),
    "/missing.jsonld": (404, b"not here"),
    "/html.jsonld": (200, b"<html>not json</html>"),
    "/nocontext.jsonld": (200, b'{"speed": "http://example.org/speed"}'),
}


class _Server:
    """A local HTTP server serving _DOCS and counting requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] += 1
                if self.path == "/slow.jsonld":
                    time.sleep(2)
                status, body = _DOCS.get(self.path, (200, b'{"@context": {}}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def resolver() -> ContextResolver:
    return ContextResolver(timeout=0.5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_core_terms_expand_as_etsi_specifies(resolver: ContextResolver) -> None:
    core = resolver.resolve(None)
    expected = {
        "Property": NGSI + "Property",
        "Relationship": NGSI + "Relationship",
        "GeoProperty": NGSI + "GeoProperty",
        "VocabProperty": NGSI + "VocabProperty",
        "location": NGSI + "location",
        "observedAt": NGSI + "observedAt",
        "value": NGSI + "hasValue",
        "object": NGSI + "hasObject",
        "datasetId": NGSI + "datasetId",
        "unitCode": NGSI + "unitCode",
        "Point": "https://purl.org/geojson/vocab#Point",
        "description": "http://purl.org/dc/terms/description",
        "id": "@id",
        "type": "@type",
    }
    for term, iri in expected.items():
        assert core.expand(term) == iri
        assert core.compact(iri) == term
    assert "vocab" in core.vocab_terms and "Property" not in core.vocab_terms
    assert core.context_value == CORE_CONTEXT_URL
    assert core.link_url == CORE_CONTEXT_URL


def test_default_vocab_and_prefixes_round_trip(resolver: ContextResolver) -> None:
    core = resolver.resolve(None)
    assert core.expand("temperature") == DEFAULT_VOCAB + "temperature"
    assert core.compact(DEFAULT_VOCAB + "temperature") == "temperature"
    assert core.expand("ngsi-ld:foo") == NGSI + "foo"
    assert core.compact(NGSI + "foo") == "ngsi-ld:foo"
    assert core.expand("http://example.org/x") == "http://example.org/x"
    assert core.compact("http://example.org/x") == "http://example.org/x"
    assert core.expand("urn:ngsi-ld:Thing:1") == "urn:ngsi-ld:Thing:1"


def test_user_context_with_prefixes_vocab_and_term_definitions(resolver: ContextResolver) -> None:
    ctx = {
        "ex": EX,
        "@vocab": "http://vocab.example.org/",
        "speed": {"@id": "ex:speed", "@type": "http://www.w3.org/2001/XMLSchema#float"},
        "owner": {"@id": "ex:owner", "@type": "@id"},
        "fuelType": {"@id": "ex:fuelType", "@type": "@vocab"},
        "Diesel": "ex:fuel/Diesel",
        "Vehicle": "ex:Vehicle",
        "location": "ex:myLocation",  # the core has absolute precedence (5.5.7)
    }
    tm = resolver.resolve(ctx)
    assert tm.expand("speed") == EX + "speed"
    assert tm.expand("owner") == EX + "owner"
    assert tm.expand("Vehicle") == EX + "Vehicle"
    assert tm.expand("Diesel") == EX + "fuel/Diesel"
    assert tm.expand("ex:brand") == EX + "brand"
    assert tm.expand("colour") == "http://vocab.example.org/colour"
    assert tm.expand("location") == NGSI + "location"
    assert "fuelType" in tm.vocab_terms
    for term in ("speed", "owner", "Vehicle", "Diesel", "ex:brand", "colour", "location", "Property"):
        assert tm.compact(tm.expand(term)) == term
    assert tm.compact(DEFAULT_VOCAB + "legacy") == "legacy"
    assert tm.context_value == [ctx, CORE_CONTEXT_URL]
    assert tm.link_url is None


def test_user_vocab_survives_core_listed_last(resolver: ContextResolver) -> None:
    tm = resolver.resolve([{"@vocab": "http://vocab.example.org/"}, CORE_CONTEXT_URL])
    assert tm.expand("colour") == "http://vocab.example.org/colour"
    assert tm.context_value == [{"@vocab": "http://vocab.example.org/"}, CORE_CONTEXT_URL]


def test_core_reference_first_lends_its_prefixes_and_keeps_precedence(resolver: ContextResolver) -> None:
    alias = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
    user = {"@protected": True, "myAttr": "ngsi-ld:myAttr", "observedAt": "http://example.org/when"}
    tm = resolver.resolve([alias, user])
    assert tm.expand("myAttr") == NGSI + "myAttr"
    assert tm.expand("observedAt") == NGSI + "observedAt"
    assert tm.context_value == [user, CORE_CONTEXT_URL]


def test_list_mixing_url_and_inline(resolver: ContextResolver, server: _Server) -> None:
    url = server.url("/other.jsonld")
    tm = resolver.resolve([url, {"Bike": "ex:Bike"}])
    assert tm.expand("Car") == EX + "Car"
    assert tm.expand("Bike") == EX + "Bike"  # prefix from the remote context
    assert tm.context_value == [url, {"Bike": "ex:Bike"}, CORE_CONTEXT_URL]
    assert tm.link_url is None
    single = resolver.resolve(url)
    assert single.link_url == url
    assert single.context_value == [url, CORE_CONTEXT_URL]


def test_url_context_fetched_once(server: _Server) -> None:
    resolver = ContextResolver()
    url = server.url("/ctx.jsonld")
    before = server.hits["/ctx.jsonld"]
    for i in range(20):
        assert resolver.resolve(url).expand("speed") == EX + "speed"
        assert resolver.resolve([url, {f"t{i}": "ex:t"}]).expand(f"t{i}") == EX + "t"
    threads = [threading.Thread(target=resolver.resolve, args=([url, {f"c{i}": "ex:c"}],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.hits["/ctx.jsonld"] - before == 1


def test_nested_remote_reference_goes_through_our_loader(server: _Server) -> None:
    resolver = ContextResolver()
    tm = resolver.resolve(server.url("/nested.jsonld"))
    assert tm.expand("Truck") == EX + "Truck"
    assert tm.expand("speed") == EX + "speed"


def test_unreachable_url_is_not_available_within_timeout(resolver: ContextResolver, server: _Server) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/ctx.jsonld"
    start = time.monotonic()
    with pytest.raises(LdContextNotAvailable) as err:
        resolver.resolve(url)
    assert url in err.value.detail
    assert time.monotonic() - start < 1.5
    start = time.monotonic()
    with pytest.raises(LdContextNotAvailable):
        resolver.resolve(server.url("/slow.jsonld"))
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("path", ["/missing.jsonld", "/html.jsonld", "/nocontext.jsonld"])
def test_unusable_remote_document_is_not_available(
    resolver: ContextResolver, server: _Server, path: str
) -> None:
    with pytest.raises(LdContextNotAvailable) as err:
        resolver.resolve([{"a": "ex:a"}, server.url(path)])
    assert server.url(path) in err.value.detail


def test_core_aliases_are_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the core context must not be fetched")

    monkeypatch.setattr(httpx, "get", no_network)
    resolver = ContextResolver()
    assert len(CORE_CONTEXT_ALIASES) == 7
    for alias in [*CORE_CONTEXT_ALIASES, CORE_CONTEXT_URL]:
        tm = resolver.resolve(alias)
        assert tm.expand("Property") == NGSI + "Property"
        assert tm.context_value == CORE_CONTEXT_URL


def test_stored_context_is_served_before_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx, "get", lambda *_a, **_k: pytest.fail("stored context fetched"))
    url = "https://contexts.example.org/stored.jsonld"
    store = {url: {"@context": {"Room": "http://example.org/Room"}}}
    resolver = ContextResolver(lookup_stored=store.get)
    assert resolver.resolve(url).expand("Room") == EX + "Room"
    store[url] = {"@context": {"Room": "http://example.org/Chamber"}}
    resolver.invalidate(url)
    assert resolver.resolve(url).expand("Room") == EX + "Chamber"


@pytest.mark.parametrize(
    "ctx",
    [
        {"speed": {"@id": 5}},
        {"@vocab": 5},
        [{"a": "ex:a"}, 5],
        "not-a-url",
        {"speed": {"@id": "ex:speed", "@context": {"x": "ex:x"}}},
    ],
)
def test_bad_inline_context_is_invalid_request(resolver: ContextResolver, ctx: object) -> None:
    with pytest.raises(InvalidRequest) as err:
        resolver.resolve(ctx)  # type: ignore[arg-type]
    assert err.value.field == "@context"


def test_term_mapped_to_null_cannot_be_expanded(resolver: ContextResolver) -> None:
    with pytest.raises(BadRequestData):
        resolver.resolve({"hidden": None}).expand("hidden")


def test_second_resolve_returns_cached_term_map(
    resolver: ContextResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = resolver.resolve({"ex": EX, "speed": "ex:speed", "Car": "ex:Car"})
    assert first.expand("rpm") == DEFAULT_VOCAB + "rpm"
    monkeypatch.setattr(jsonld.JsonLdProcessor, "process_context", lambda *_a: pytest.fail("reprocessed"))
    again = resolver.resolve({"Car": "ex:Car", "speed": "ex:speed", "ex": EX})  # key order is irrelevant
    assert again is first
    assert again.expand("rpm") == DEFAULT_VOCAB + "rpm"
    assert again.compact(EX + "speed") == "speed"


def test_lru_evicts_least_recently_used() -> None:
    resolver = ContextResolver(maxsize=2)
    a = resolver.resolve({"a": "http://example.org/a"})
    b = resolver.resolve({"b": "http://example.org/b"})
    assert resolver.resolve({"a": "http://example.org/a"}) is a  # now b is the least recently used
    resolver.resolve({"c": "http://example.org/c"})
    assert resolver.resolve({"a": "http://example.org/a"}) is a
    assert resolver.resolve({"b": "http://example.org/b"}) is not b


def test_link_header_context() -> None:
    url = "https://example.org/ctx.jsonld"
    assert link_header_context(None) is None
    assert link_header_context("  ") is None
    assert link_header_context(make_link_header(url)) == url
    assert link_header_context(f'<https://example.org/p2>; rel="next", <{url}>;rel={REL}') == url
    assert link_header_context(f'<{url}>; rel="alternate {REL}"; type="application/ld+json"') == url
    assert link_header_context('<https://example.org/p2>; rel="next"') is None
    assert make_link_header(url) == f'<{url}>; rel="{REL}"; type="application/ld+json"'


@pytest.mark.parametrize(
    "header",
    [
        "https://example.org/ctx.jsonld",
        "<https://example.org/ctx.jsonld",
        f'<https://example.org/ctx.jsonld>; rel="{REL}" junk',
        f'<https://a.example/c>; rel="{REL}", <https://b.example/c>; rel="{REL}"',
    ],
)
def test_malformed_link_header_is_bad_request_data(header: str) -> None:
    with pytest.raises(BadRequestData) as err:
        link_header_context(header)
    assert err.value.field == "Link"
