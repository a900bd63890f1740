"""The built-in ``weather`` tool: today's, tomorrow's or the day after tomorrow's weather in a city, from
Open-Meteo (https://open-meteo.com, free, no key).

It never invents weather. Every figure in its answer comes from the service's response for that city;
when the service cannot be reached, cannot find the place or sends something it cannot read, the tool
raises a :class:`ToolException` that says so ("the weather service is unreachable right now") and the
graph tells the customer that, instead of a plausible-sounding guess.

Two requests per answer: the geocoding API (``/v1/search?name=...&count=1``) turns the city into
coordinates, then the forecast API (``/v1/forecast?latitude=...&longitude=...``) returns current
conditions and three days of daily values in the place's own time zone (``timezone=auto``, so "today" is
today *there*). Both responses are checked field by field (types and plausible ranges) before use.

Why retries: the service is remote and free, and a single dropped connection, timeout or 5xx answer is
common and usually gone a moment later. Each request is tried at most :data:`MAX_ATTEMPTS` times with
exponential backoff (0.2 s, then 0.4 s), and only for those transient failures: a 4xx answer, an unknown
city or an unreadable body is not retried, since asking again would get the same answer. Every attempt
is bounded by ``settings.weather_timeout_s`` and every body by :data:`MAX_RESPONSE_BYTES`.

Why a cache: customers ask the same question again ("and tomorrow?"), and the forecast does not change
from one minute to the next. Places are cached by normalised city name, forecasts by coordinates (one
forecast response holds all three days, so asking for another day of the same city costs no request),
both in :class:`cachetools.TTLCache` of :data:`CACHE_SIZE` entries for ``settings.weather_cache_ttl_s``
seconds, guarded by a lock (the graph may run turns on several threads). Failures are never cached.

Finding the city in a turn (:meth:`Weather.extract`) is pattern work: a capitalised place name of one to
three words after "in", "for", "at" or "near" ("weather in Paris", "forecast for New York tomorrow",
"is it raining in São Paulo?", "temperature at Berlin"), with lower-case joining words inside a name
("Rio de Janeiro", "Frankfurt am Main"); it stops at words such as today, tomorrow, this, next and at
punctuation. An all-lower-case turn that says "weather" or "forecast" may name a lower-case city. With
no city found the graph asks the customer for one rather than guessing.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, get_args

import httpx
from cachetools import TTLCache
from langchain_core.tools import ToolException
from pydantic import BaseModel, Field, StringConstraints, field_validator
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from r1agent.tools.base import AgentTool, Turn

if TYPE_CHECKING:
    from r1agent.settings import Settings

log = logging.getLogger(__name__)

Day = Literal["today", "tomorrow", "day_after_tomorrow"]
DAYS: Final[tuple[Day, ...]] = get_args(Day)
"""Index in the forecast's daily arrays: today is 0."""
FORECAST_DAYS: Final = len(DAYS)

MAX_CITY_CHARS: Final = 100
MAX_ATTEMPTS: Final = 3
BACKOFF_S: Final = 0.2
"""First wait between attempts; doubled each time, capped at :data:`MAX_BACKOFF_S`."""
MAX_BACKOFF_S: Final = 2.0
MAX_RESPONSE_BYTES: Final = 1_000_000
CACHE_SIZE: Final = 256

UNREACHABLE: Final = "the weather service is unreachable right now"
UNREADABLE: Final = "the weather service sent an answer I could not read"
ATTRIBUTION: Final = "Open-Meteo"

CURRENT_VARIABLES: Final = ("temperature_2m", "weather_code", "wind_speed_10m")
DAILY_VARIABLES: Final = ("temperature_2m_max", "temperature_2m_min", "precipitation_probability_max", "weather_code")

WMO_CODES: Final[dict[int, str]] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snowfall",
    73: "moderate snowfall",
    75: "heavy snowfall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}
"""WMO weather interpretation codes, as Open-Meteo documents them. An unknown code is left out, never guessed."""

_DAY_WORDS: Final[dict[Day, str]] = {
    "today": "today",
    "tomorrow": "tomorrow",
    "day_after_tomorrow": "the day after tomorrow",
}
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS for ch in text)


def normalise_city(city: str) -> str:
    """The cache key of a city name: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", city).casefold().split())


# --- arguments -------------------------------------------------------------------------------------


class WeatherArgs(BaseModel):
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CITY_CHARS)] = Field(
        description="The city or town, e.g. 'Paris' or 'New York' (a country may follow: 'Paris, France')."
    )
    day: Day = Field(
        default="today",
        description="Which day: 'today', 'tomorrow' or 'day_after_tomorrow'.",
    )

    @field_validator("city")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if _has_control_characters(value):
            raise ValueError("the city name contains control characters")
        return value


# --- responses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    name: str
    country: str | None
    latitude: float
    longitude: float
    timezone: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}, {self.country}" if self.country else self.name


@dataclass(frozen=True)
class DayForecast:
    date: str
    temperature_max: float | None
    temperature_min: float | None
    precipitation_probability: float | None
    weather_code: int | None


@dataclass(frozen=True)
class Current:
    temperature: float
    weather_code: int | None
    wind_speed: float | None


@dataclass(frozen=True)
class Forecast:
    days: tuple[DayForecast, ...]
    current: Current | None
    temperature_unit: str
    wind_unit: str


class _ServerError(Exception):
    """A 5xx answer: transient, so retried."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _unreadable(why: str) -> ToolException:
    log.warning("weather: unreadable response (%s)", why)
    return ToolException(UNREADABLE)


def _number(value: object, what: str, low: float, high: float, *, nullable: bool = False) -> float | None:
    """``value`` as a finite float within [low, high]; ``None`` only where Open-Meteo may send null."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _unreadable(f"{what} is not a number")
    if not low <= value <= high:
        raise _unreadable(f"{what} is out of range")
    return float(value)


def _required_number(value: object, what: str, low: float, high: float) -> float:
    number = _number(value, what, low, high)
    assert number is not None  # not nullable
    return number


def _code(value: object, what: str) -> int | None:
    number = _number(value, what, 0, 99, nullable=True)
    if number is None:
        return None
    if not number.is_integer():
        raise _unreadable(f"{what} is not a whole number")
    return int(number)


def _text(value: object, what: str, *, nullable: bool = False, max_chars: int = 200) -> str | None:
    """A short, printable string (the service's words end up in the customer's answer)."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars or _has_control_characters(value):
        raise _unreadable(f"{what} is not a short text")
    return value.strip()


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _unreadable(f"{what} is not an object")
    return value


def _array(value: object, what: str, length: int) -> list[Any]:
    if not isinstance(value, list) or len(value) < length:
        raise _unreadable(f"{what} is not an array of {length} values")
    return value


def parse_place(data: object) -> Place | None:
    """The first geocoding result; ``None`` when there is none (Open-Meteo then omits ``results``)."""
    body = _object(data, "the geocoding response")
    results = body.get("results")
    if results is None:
        return None
    if not isinstance(results, list):
        raise _unreadable("results is not an array")
    if not results:
        return None
    first = _object(results[0], "a geocoding result")
    name = _text(first.get("name"), "name")
    assert name is not None
    return Place(
        name=name,
        country=_text(first.get("country"), "country", nullable=True),
        latitude=_required_number(first.get("latitude"), "latitude", -90, 90),
        longitude=_required_number(first.get("longitude"), "longitude", -180, 180),
        timezone=_text(first.get("timezone"), "timezone", nullable=True),
    )


def _unit(units: object, key: str, default: str) -> str:
    if not isinstance(units, dict) or key not in units:
        return default
    unit = _text(units[key], f"the unit of {key}", max_chars=12)
    assert unit is not None
    return unit


def parse_forecast(data: object) -> Forecast:
    """Current conditions (optional) and :data:`FORECAST_DAYS` days of daily values, every one checked."""
    body = _object(data, "the forecast response")
    if body.get("error") is True:
        raise _unreadable(f"the service reported an error: {str(body.get('reason'))[:200]}")
    daily = _object(body.get("daily"), "daily")
    dates = _array(daily.get("time"), "daily.time", FORECAST_DAYS)
    highs = _array(daily.get("temperature_2m_max"), "daily.temperature_2m_max", FORECAST_DAYS)
    lows = _array(daily.get("temperature_2m_min"), "daily.temperature_2m_min", FORECAST_DAYS)
    rain = _array(daily.get("precipitation_probability_max"), "daily.precipitation_probability_max", FORECAST_DAYS)
    codes = _array(daily.get("weather_code"), "daily.weather_code", FORECAST_DAYS)
    days: list[DayForecast] = []
    for i in range(FORECAST_DAYS):
        date = _text(dates[i], "a daily date", max_chars=32)
        assert date is not None
        day = DayForecast(
            date=date,
            temperature_max=_number(highs[i], "a daily maximum temperature", -100, 150, nullable=True),
            temperature_min=_number(lows[i], "a daily minimum temperature", -100, 150, nullable=True),
            precipitation_probability=_number(rain[i], "a precipitation probability", 0, 100, nullable=True),
            weather_code=_code(codes[i], "a daily weather code"),
        )
        days.append(day)
    current: Current | None = None
    if body.get("current") is not None:
        now = _object(body["current"], "current")
        current = Current(
            temperature=_required_number(now.get("temperature_2m"), "the current temperature", -100, 150),
            weather_code=_code(now.get("weather_code"), "the current weather code"),
            wind_speed=_number(now.get("wind_speed_10m"), "the current wind speed", 0, 1000, nullable=True),
        )
    return Forecast(
        days=tuple(days),
        current=current,
        temperature_unit=_unit(body.get("daily_units"), "temperature_2m_max", "°C"),
        wind_unit=_unit(body.get("current_units"), "wind_speed_10m", "km/h"),
    )


def _figure(value: float) -> str:
    """17.8 -> "17.8", 18.0 -> "18", -0.0 -> "0" (the service's own precision, one decimal)."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def describe(place: Place, forecast: Forecast, day: Day) -> str:
    """One short factual line, e.g. "Paris, France — tomorrow (2026-05-02): 12.1–18.4 °C, 40% chance of
    rain, partly cloudy (Open-Meteo)". Only what the response holds is said."""
    entry = forecast.days[DAYS.index(day)]
    if entry.temperature_min is None or entry.temperature_max is None:
        raise _unreadable(f"no temperatures for {entry.date}")
    if entry.temperature_min > entry.temperature_max:
        raise _unreadable(f"minimum above maximum on {entry.date}")
    unit = forecast.temperature_unit
    parts = [f"{_figure(entry.temperature_min)}–{_figure(entry.temperature_max)} {unit}"]
    if entry.precipitation_probability is not None:
        parts.append(f"{_figure(entry.precipitation_probability)}% chance of rain")
    if entry.weather_code in WMO_CODES:
        parts.append(WMO_CODES[entry.weather_code])
    text = f"{place.label} — {_DAY_WORDS[day]} ({entry.date}): {', '.join(parts)}"
    if day == "today" and forecast.current is not None:
        now = forecast.current
        current = [f"{_figure(now.temperature)} {unit}"]
        if now.weather_code in WMO_CODES:
            current.append(WMO_CODES[now.weather_code])
        if now.wind_speed is not None:
            current.append(f"wind {_figure(now.wind_speed)} {forecast.wind_unit}")
        text += f"; now {', '.join(current)}"
    return f"{text} ({ATTRIBUTION})"


# --- the HTTP client -------------------------------------------------------------------------------


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _ServerError)


class OpenMeteoClient:
    """Geocoding and forecasts over HTTP, with retries, a TTL cache and validated responses.

    ``transport`` replaces httpx's network transport (tests may pass one; the shipped tests use a real
    local server instead). ``timer`` is the cache's clock (``time.monotonic`` by default).
    """

    def __init__(
        self,
        *,
        geocoding_url: str,
        forecast_url: str,
        timeout_s: float,
        cache_ttl_s: float,
        cache_size: int = CACHE_SIZE,
        attempts: int = MAX_ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        transport: httpx.BaseTransport | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError("attempts must be >= 1, timeout_s > 0 and backoff_s >= 0")
        self.geocoding_url = geocoding_url
        self.forecast_url = forecast_url
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "r1agent weather tool"},
        )
        self._lock = threading.Lock()
        ttl = max(cache_ttl_s, 0.0)
        self._places: TTLCache[str, Place] = TTLCache(maxsize=cache_size, ttl=ttl, timer=timer)
        self._forecasts: TTLCache[tuple[float, float], Forecast] = TTLCache(maxsize=cache_size, ttl=ttl, timer=timer)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> OpenMeteoClient:
        return cls(
            geocoding_url=settings.weather_geocoding_url,
            forecast_url=settings.weather_forecast_url,
            timeout_s=settings.weather_timeout_s,
            cache_ttl_s=settings.weather_cache_ttl_s,
            **kwargs,
        )

    def close(self) -> None:
        self._http.close()

    def clear_cache(self) -> None:
        with self._lock:
            self._places.clear()
            self._forecasts.clear()

    # -- requests --

    def _attempt(self, url: str, params: dict[str, str | int | float]) -> bytes:
        with self._http.stream("GET", url, params=params) as response:
            if response.status_code >= 500:
                raise _ServerError(response.status_code)
            if response.status_code != 200:
                # 4xx: the service refused this request; asking again would not help.
                log.warning("weather: %s answered HTTP %d", url, response.status_code)
                raise ToolException(UNREACHABLE)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise _unreadable(f"body over {MAX_RESPONSE_BYTES} bytes")
            return bytes(body)

    def get_json(self, url: str, params: dict[str, str | int | float]) -> object:
        """GET ``url`` and decode its JSON: retried on transient failures, else a ToolException."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=MAX_BACKOFF_S),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            body = retrying(self._attempt, url, params)
        except (httpx.HTTPError, _ServerError) as exc:
            log.warning("weather: %s failed after %d attempts: %r", url, self.attempts, exc)
            raise ToolException(UNREACHABLE) from exc
        except RuntimeError as exc:
            # A socket guard (a sandbox, pytest-socket) refusing the connection: unreachable too.
            log.warning("weather: %s refused: %r", url, exc)
            raise ToolException(UNREACHABLE) from exc
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise _unreadable("not JSON") from exc

    def place(self, city: str) -> Place:
        """The place Open-Meteo finds for ``city`` (cached); a ToolException naming it when none."""
        key = normalise_city(city)
        with self._lock:
            cached = self._places.get(key)
        if cached is not None:
            return cached
        data = self.get_json(self.geocoding_url, {"name": city, "count": 1, "language": "en", "format": "json"})
        found = parse_place(data)
        if found is None:
            raise ToolException(f"I could not find a place called {city!r}")
        with self._lock:
            self._places[key] = found
        return found

    def forecast(self, place: Place) -> Forecast:
        """Current conditions and three days for ``place`` (cached by coordinates)."""
        key = (round(place.latitude, 4), round(place.longitude, 4))
        with self._lock:
            cached = self._forecasts.get(key)
        if cached is not None:
            return cached
        data = self.get_json(
            self.forecast_url,
            {
                "latitude": place.latitude,
                "longitude": place.longitude,
                "current": ",".join(CURRENT_VARIABLES),
                "daily": ",".join(DAILY_VARIABLES),
                "timezone": "auto",
                "forecast_days": FORECAST_DAYS,
            },
        )
        found = parse_forecast(data)
        with self._lock:
            self._forecasts[key] = found
        return found

    def weather(self, city: str, day: Day = "today") -> str:
        place = self.place(city)
        return describe(place, self.forecast(place), day)


# --- finding the city in a turn --------------------------------------------------------------------

_STRONG = re.compile(r"\b(?:weather|forecast)\b", re.IGNORECASE)
"""Words that make a turn a weather question by themselves."""
_TRIGGERS: Final = (
    r"\bweather\b",
    r"\bforecasts?\b",
    r"\btemperatures?\b",
    r"\brain(?:s|ing|y)?\b",
    r"\bsnow(?:s|ing|y)?\b",
    r"\bsunny\b",
    r"\bumbrellas?\b",
)
_PREPOSITION = re.compile(r"\b(?:in|for|at|near)[ \t]+", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_GAP = re.compile(r"[ \t]+")
_ABBREVIATIONS: Final = frozenset({"st", "ste", "mt", "ft"})
_CONNECTORS: Final = frozenset(
    {"de", "del", "da", "do", "dos", "das", "di", "la", "le", "les", "el", "am", "an", "der", "upon", "on", "sur"}
)
_STOP_WORDS: Final = frozenset(
    "today tomorrow tonight now this next and or but the a an my your our their his her its me us you it i "
    "here there please thanks thank right currently general weekend week morning afternoon evening night "
    "day days moment time outside like be is are will would should could can do does stock store shop order "
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december celsius fahrenheit".split()
)
_MAX_CITY_WORDS: Final = 3
_MAX_SCAN_CHARS: Final = 2000
_DAY_AFTER = re.compile(r"\bday[ \t]+after[ \t]+tomorrow\b|\bovermorrow\b", re.IGNORECASE)
_TOMORROW = re.compile(r"\b(?:tomorrow|tmrw?)\b", re.IGNORECASE)


def _place_at(text: str, pos: int, lowercase_ok: bool) -> str | None:
    """The place name starting at ``pos``: up to three name words, lower-case connectors inside."""
    words: list[str] = []
    pending: list[str] = []  # connectors, kept only if a name word follows
    names = 0
    for _ in range(2 * _MAX_CITY_WORDS + 1):  # bounded: names are short
        match = _WORD.match(text, pos)
        if match is None:
            break
        word = match.group()
        folded = word.casefold()
        if words and folded in _CONNECTORS and not word[0].isupper():
            pending.append(word)
        elif folded in _STOP_WORDS or not (word[0].isupper() or lowercase_ok):
            break
        else:
            words += [*pending, word]
            pending = []
            names += 1
        pos = match.end()
        if folded in _ABBREVIATIONS and text.startswith(".", pos):
            words[-1] += "."
            pos += 1
        gap = _GAP.match(text, pos)
        if gap is None or names >= _MAX_CITY_WORDS:
            break
        pos = gap.end()
    return " ".join(words) or None


def find_city(text: str) -> str | None:
    """The place a weather question is about ("weather in Paris" -> "Paris"); None if it names none."""
    text = text[:_MAX_SCAN_CHARS]
    lowercase_ok = not any(ch.isupper() for ch in text) and _STRONG.search(text) is not None
    for match in _PREPOSITION.finditer(text):
        city = _place_at(text, match.end(), lowercase_ok)
        if city is not None and len(city) <= MAX_CITY_CHARS:
            return city
    return None


def find_day(text: str) -> Day:
    if _DAY_AFTER.search(text):
        return "day_after_tomorrow"
    if _TOMORROW.search(text):
        return "tomorrow"
    return "today"


# --- the tool --------------------------------------------------------------------------------------


class Weather(AgentTool):
    name: str = "weather"
    description: str = (
        "Current weather and the forecast for today, tomorrow or the day after tomorrow in a city: minimum "
        "and maximum temperature, chance of rain, sky conditions and, for today, the temperature and wind now. "
        "Data from Open-Meteo; when the service cannot be reached the tool says so and never guesses."
    )
    args_schema: type[BaseModel] = WeatherArgs
    intents: frozenset[str] = frozenset()  # weather is outside the shop's taxonomy: served by trigger
    triggers: tuple[str, ...] = _TRIGGERS
    client: OpenMeteoClient

    def close(self) -> None:
        self.client.close()

    def serves(self, turn: Turn) -> bool:
        # "weather"/"forecast" suffice; rain, snow, umbrella and temperature also name products and
        # washing instructions ("rain boots", "patio umbrella"), so those need a place as well.
        if not super().serves(turn):
            return False
        return _STRONG.search(turn.text) is not None or find_city(turn.text) is not None

    def extract(self, turn: Turn) -> dict[str, Any]:
        city = find_city(turn.text)
        if city is None:
            return {}
        return {"city": city, "day": find_day(turn.text[:_MAX_SCAN_CHARS])}

    def ask_for(self, missing: Sequence[str]) -> str:
        if "city" in missing:
            return "Which city would you like the weather for?"
        return super().ask_for(missing)

    def _run(self, city: str, day: Day = "today") -> str:
        return self.client.weather(city, day)


def make_tools(settings: Settings) -> list[AgentTool]:
    """Entry point ``weather``. Cheap: no request is made until the tool is called."""
    return [Weather(client=OpenMeteoClient.from_settings(settings))]
