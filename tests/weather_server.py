"""A real HTTP server on 127.0.0.1 that speaks Open-Meteo's geocoding and forecast JSON, for tests.

It answers ``GET /v1/search`` and ``GET /v1/forecast`` like the real service (same parameters, same
response shapes, only the variables asked for) for Paris and New York with fixed numbers, and a
geocoding answer without ``results`` for any other name. It can be told to fail: ``fail_next(n)``
(answer 503), ``hang_next(n, seconds)`` (say nothing for a while; released at once by ``close``) and
``malformed_next(n, body)`` (a 200 whose body is broken JSON, or any bytes you give). It counts the
requests per path and keeps their query parameters.

    with WeatherServer() as server:
        settings = Settings(weather_geocoding_url=server.url + "/v1/search", ...)
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEARCH_PATH = "/v1/search"
FORECAST_PATH = "/v1/forecast"
MAX_HANG_S = 10.0
"""No hang lasts longer than this, whatever a test asks."""

# Geocoding results as Open-Meteo returns them (fields of https://open-meteo.com/en/docs/geocoding-api).
PLACES: dict[str, dict[str, Any]] = {
    "paris": {
        "id": 2988507,
        "name": "Paris",
        "latitude": 48.85341,
        "longitude": 2.3488,
        "elevation": 42.0,
        "feature_code": "PPLC",
        "country_code": "FR",
        "admin1_id": 3012874,
        "timezone": "Europe/Paris",
        "population": 2138551,
        "country_id": 3017382,
        "country": "France",
        "admin1": "Île-de-France",
    },
    "new york": {
        "id": 5128581,
        "name": "New York",
        "latitude": 40.71427,
        "longitude": -74.00597,
        "elevation": 10.0,
        "feature_code": "PPL",
        "country_code": "US",
        "admin1_id": 5128638,
        "timezone": "America/New_York",
        "population": 8804190,
        "country_id": 6252001,
        "country": "United States",
        "admin1": "New York",
    },
}

# Seven days (the service's default forecast_days) of fixed numbers per place.
DATES = ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05", "2026-05-06", "2026-05-07"]
FORECASTS: dict[str, dict[str, Any]] = {
    "paris": {
        "timezone": "Europe/Paris",
        "timezone_abbreviation": "GMT+2",
        "utc_offset_seconds": 7200,
        "elevation": 43.0,
        "current": {"time": "2026-05-01T14:00", "temperature_2m": 14.2, "weather_code": 3, "wind_speed_10m": 11.5},
        "daily": {
            "temperature_2m_max": [17.8, 18.4, 21.0, 19.5, 16.0, 15.2, 17.1],
            "temperature_2m_min": [9.5, 12.1, 13.0, 11.4, 8.9, 7.7, 9.0],
            "precipitation_probability_max": [20, 40, 85, 10, 0, 5, 30],
            "weather_code": [1, 2, 63, 0, 3, 45, 80],
        },
    },
    "new york": {
        "timezone": "America/New_York",
        "timezone_abbreviation": "GMT-4",
        "utc_offset_seconds": -14400,
        "elevation": 32.0,
        "current": {"time": "2026-05-01T08:00", "temperature_2m": -2.5, "weather_code": 71, "wind_speed_10m": 24.0},
        "daily": {
            "temperature_2m_max": [1.0, 4.5, 6.0, 8.2, 10.0, 9.1, 7.3],
            "temperature_2m_min": [-4.0, -1.5, 0.0, 2.2, 3.1, 1.0, -0.5],
            "precipitation_probability_max": [90, 60, 15, 5, 0, 20, 35],
            "weather_code": [73, 71, 3, 2, 1, 61, 95],
        },
    },
}
UNITS = {
    "time": "iso8601",
    "interval": "seconds",
    "temperature_2m": "°C",
    "temperature_2m_max": "°C",
    "temperature_2m_min": "°C",
    "precipitation_probability_max": "%",
    "weather_code": "wmo code",
    "wind_speed_10m": "km/h",
}
BROKEN_JSON = b'{"results": [{"name": "Paris", "latitude": 48.85'


@dataclass
class _Fault:
    kind: str  # "status", "hang", "body"
    status: int = 503
    seconds: float = 0.0
    body: bytes = b""


def _error(reason: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": True, "reason": reason}


def _search(query: Mapping[str, list[str]]) -> tuple[int, dict[str, Any]]:
    name = query.get("name", [""])[0]
    count = query.get("count", ["10"])[0]
    if not count.isdigit() or not 1 <= int(count) <= 100:
        return _error("Parameter count must be between 1 and 100.")
    body: dict[str, Any] = {"generationtime_ms": 0.5}
    place = PLACES.get(" ".join(name.casefold().split()))
    if place is not None:
        body["results"] = [place][: int(count)]
    return 200, body


def _variables(query: Mapping[str, list[str]], key: str, known: Mapping[str, Any]) -> list[str] | str:
    """The variables asked for under ``key``, or the name of an unknown one."""
    names = [n for n in ",".join(query.get(key, [])).split(",") if n]
    for name in names:
        if name not in known:
            return name
    return names


def _forecast(query: Mapping[str, list[str]]) -> tuple[int, dict[str, Any]]:
    try:
        latitude = float(query["latitude"][0])
        longitude = float(query["longitude"][0])
    except (KeyError, ValueError):
        return _error("Parameter 'latitude' and 'longitude' must have the same number of elements")
    days = query.get("forecast_days", ["7"])[0]
    if not days.isdigit() or not 0 <= int(days) <= len(DATES):
        return _error(f"Forecast days is invalid. Allowed range 0 to {len(DATES)}.")
    key = next(
        (
            k
            for k, p in PLACES.items()
            if abs(p["latitude"] - latitude) < 0.01 and abs(p["longitude"] - longitude) < 0.01
        ),
        None,
    )
    if key is None:
        return _error("This test server only knows Paris and New York.")
    data = FORECASTS[key]
    body: dict[str, Any] = {
        "latitude": round(latitude, 2),
        "longitude": round(longitude, 2),
        "generationtime_ms": 0.1,
        "utc_offset_seconds": data["utc_offset_seconds"] if query.get("timezone") else 0,
        "timezone": data["timezone"] if query.get("timezone") else "GMT",
        "timezone_abbreviation": data["timezone_abbreviation"] if query.get("timezone") else "GMT",
        "elevation": data["elevation"],
    }
    current = _variables(query, "current", data["current"])
    daily = _variables(query, "daily", data["daily"])
    for asked in (current, daily):
        if isinstance(asked, str):
            return _error(f"Cannot initialize WeatherVariable from invalid String value {asked}.")
    assert isinstance(current, list) and isinstance(daily, list)
    if current:
        body["current_units"] = {k: UNITS[k] for k in ("time", "interval", *current)}
        body["current"] = {"time": data["current"]["time"], "interval": 900} | {k: data["current"][k] for k in current}
    if daily:
        n = int(days)
        body["daily_units"] = {k: UNITS[k] for k in ("time", *daily)}
        body["daily"] = {"time": DATES[:n]} | {k: data["daily"][k][:n] for k in daily}
    return 200, body


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        fault = owner._record(url.path, parse_qs(url.query))
        if fault is not None and fault.kind == "hang":
            owner._stopping.wait(min(fault.seconds, MAX_HANG_S))
            if owner._stopping.is_set():
                return
        if fault is not None and fault.kind == "status":
            self._send(fault.status, json.dumps({"error": True, "reason": "Service Unavailable"}).encode())
            return
        if fault is not None and fault.kind == "body":
            self._send(200, fault.body)
            return
        if url.path == SEARCH_PATH:
            status, body = _search(parse_qs(url.query))
        elif url.path == FORECAST_PATH:
            status, body = _forecast(parse_qs(url.query))
        else:
            status, body = 404, {"error": True, "reason": "Not Found"}
        self._send(status, json.dumps(body).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read the counters instead


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: WeatherServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


class WeatherServer:
    """A local Open-Meteo stand-in. Use as a context manager, or ``start()`` and ``close()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._requests: Counter[str] = Counter()
        self._queries: list[tuple[str, dict[str, list[str]]]] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> WeatherServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()  # releases every hanging handler at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> WeatherServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- faults --

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` requests (any path) with ``status``."""
        self._add(n, _Fault("status", status=status))

    def hang_next(self, n: int, seconds: float = 3.0) -> None:
        """Say nothing to the next ``n`` requests for ``seconds`` (at most MAX_HANG_S), then answer normally."""
        self._add(n, _Fault("hang", seconds=seconds))

    def malformed_next(self, n: int, body: bytes = BROKEN_JSON) -> None:
        """Answer the next ``n`` requests with a 200 carrying ``body`` (broken JSON by default)."""
        self._add(n, _Fault("body", body=body))

    def _add(self, n: int, fault: _Fault) -> None:
        if not 0 <= n <= 1000:
            raise ValueError("n must be between 0 and 1000")
        with self._lock:
            self._faults.extend([fault] * n)

    # -- what happened --

    def _record(self, path: str, query: dict[str, list[str]]) -> _Fault | None:
        with self._lock:
            self._requests[path] += 1
            self._queries.append((path, query))
            return self._faults.pop(0) if self._faults else None

    @property
    def requests(self) -> dict[str, int]:
        """Requests received per path (failed ones included)."""
        with self._lock:
            return dict(self._requests)

    @property
    def queries(self) -> list[tuple[str, dict[str, list[str]]]]:
        with self._lock:
            return list(self._queries)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queries.clear()
            self._faults.clear()


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens (a port just bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
