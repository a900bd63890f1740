"""A local stand-in for Open-Meteo, so the suite's weather cases run offline and give the same answer
every time: a real HTTP server on 127.0.0.1 speaking the geocoding (``/v1/search``) and forecast
(``/v1/forecast``) JSON the weather tool reads, with fixed numbers for the cities in :data:`CITIES`.

Any other place gets Open-Meteo's "no results" answer, so the tool's "I could not find a place"
path is exercised too. ``r1agent eval run`` starts one for the run and points the weather tool at it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

SEARCH_PATH = "/v1/search"
FORECAST_PATH = "/v1/forecast"
DATES = ("2026-05-01", "2026-05-02", "2026-05-03")


class City(NamedTuple):
    name: str
    country: str
    latitude: float
    longitude: float
    timezone: str
    highs: tuple[float, float, float]
    lows: tuple[float, float, float]
    rain: tuple[int, int, int]
    codes: tuple[int, int, int]
    now: float


CITIES: dict[str, City] = {
    c.name.casefold(): c
    for c in (
        City("Paris", "France", 48.85341, 2.3488, "Europe/Paris", (17.8, 18.4, 21.0), (9.5, 12.1, 13.0),
             (20, 40, 85), (1, 2, 63), 14.2),
        City("New York", "United States", 40.71427, -74.00597, "America/New_York", (1.0, 4.5, 6.0),
             (-4.0, -1.5, 0.0), (90, 60, 15), (73, 71, 3), -2.5),
        City("London", "United Kingdom", 51.50853, -0.12574, "Europe/London", (14.3, 12.6, 15.9),
             (7.2, 8.8, 9.4), (70, 95, 30), (61, 65, 2), 11.0),
        City("Tokyo", "Japan", 35.6895, 139.69171, "Asia/Tokyo", (24.1, 26.7, 22.5), (16.0, 18.2, 17.4),
             (10, 5, 55), (0, 1, 80), 21.3),
    )
}  # fmt: skip


def _search(query: dict[str, list[str]]) -> dict[str, Any]:
    city = CITIES.get(" ".join(query.get("name", [""])[0].casefold().split()))
    if city is None:
        return {"generationtime_ms": 0.1}  # Open-Meteo leaves out "results" when nothing matches
    place = {"name": city.name, "country": city.country, "latitude": city.latitude, "longitude": city.longitude}
    return {"results": [place | {"timezone": city.timezone}], "generationtime_ms": 0.1}


def _forecast(query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    try:
        latitude, longitude = float(query["latitude"][0]), float(query["longitude"][0])
    except (KeyError, ValueError):
        return 400, {"error": True, "reason": "latitude and longitude are required"}
    city = next((c for c in CITIES.values() if abs(c.latitude - latitude) + abs(c.longitude - longitude) < 0.01), None)
    if city is None:
        return 400, {"error": True, "reason": "this stub only knows " + ", ".join(c.name for c in CITIES.values())}
    return 200, {
        "latitude": latitude,
        "longitude": longitude,
        "timezone": city.timezone,
        "current_units": {"temperature_2m": "°C", "weather_code": "wmo code", "wind_speed_10m": "km/h"},
        "current": {"time": f"{DATES[0]}T12:00", "temperature_2m": city.now, "weather_code": city.codes[0],
                    "wind_speed_10m": 12.0},
        "daily_units": {"temperature_2m_max": "°C", "temperature_2m_min": "°C",
                        "precipitation_probability_max": "%", "weather_code": "wmo code"},
        "daily": {"time": list(DATES), "temperature_2m_max": list(city.highs), "temperature_2m_min": list(city.lows),
                  "precipitation_probability_max": list(city.rain), "weather_code": list(city.codes)},
    }  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == SEARCH_PATH:
            status, body = 200, _search(query)
        elif url.path == FORECAST_PATH:
            status, body = _forecast(query)
        else:
            status, body = 404, {"error": True, "reason": "Not Found"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the eval's own records say what the tool did


class WeatherStub:
    """``with WeatherStub() as stub: Settings(weather_geocoding_url=stub.geocoding_url, ...)``"""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def geocoding_url(self) -> str:
        return self.url + SEARCH_PATH

    @property
    def forecast_url(self) -> str:
        return self.url + FORECAST_PATH

    def __enter__(self) -> WeatherStub:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
