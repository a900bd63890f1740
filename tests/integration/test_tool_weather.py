"""The weather tool against a real HTTP server on 127.0.0.1 that speaks Open-Meteo's JSON: real answers
from the server's numbers, unknown places, retries on 503 (and their limit), a hanging server, broken
JSON and wrong types, the cache, a closed port, and finding the city and day in a customer's turn.
Whatever fails, the tool says the service is unreachable or unreadable: it never invents weather."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.tools import ToolException
from pydantic import ValidationError

from r1agent.plugins.testing import check_plugin, tool_problems
from r1agent.settings import Settings
from r1agent.tools import Turn, choose_tool
from r1agent.tools.weather import (
    MAX_ATTEMPTS,
    UNREACHABLE,
    UNREADABLE,
    OpenMeteoClient,
    Weather,
    WeatherArgs,
    make_tools,
)
from tests.weather_server import FORECAST_PATH, SEARCH_PATH, WeatherServer, closed_port_url

TIMEOUT_S = 0.5
HANG_BOUND_S = 4.0
"""3 attempts of 0.5 s each plus the 0.2 s and 0.4 s waits is about 2.1 s."""


@pytest.fixture
def server() -> Iterator[WeatherServer]:
    with WeatherServer() as server:
        yield server


def _settings(url: str, tmp_path: Path, **overrides: float) -> Settings:
    values: dict[str, object] = {
        "weather_geocoding_url": url + SEARCH_PATH,
        "weather_forecast_url": url + FORECAST_PATH,
        "weather_timeout_s": TIMEOUT_S,
        "data_dir": tmp_path,
        "cache_dir": tmp_path,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def _tool(settings: Settings) -> Weather:
    (tool,) = make_tools(settings)
    assert isinstance(tool, Weather)
    return tool


@pytest.fixture
def tool(server: WeatherServer, tmp_path: Path) -> Iterator[Weather]:
    tool = _tool(_settings(server.url, tmp_path))
    yield tool
    tool.client.close()


def _error(tool: Weather, args: dict[str, str]) -> str:
    with pytest.raises(ToolException) as caught:
        tool.invoke(args)
    return str(caught.value)


def _turn(text: str, intent: str = "out_of_scope") -> Turn:
    return Turn(text=text, intent=intent, entities={})


# --- real answers ----------------------------------------------------------------------------------


def test_paris_today_is_the_servers_numbers(tool: Weather, server: WeatherServer) -> None:
    text = tool.invoke({"city": "Paris"})
    assert text == (
        "Paris, France — today (2026-05-01): 9.5–17.8 °C, 20% chance of rain, mainly clear; "
        "now 14.2 °C, overcast, wind 11.5 km/h (Open-Meteo)"
    )
    assert server.requests == {SEARCH_PATH: 1, FORECAST_PATH: 1}


def test_the_requests_are_open_meteos(tool: Weather, server: WeatherServer) -> None:
    tool.invoke({"city": "  New York  ", "day": "tomorrow"})
    (search_path, search), (forecast_path, forecast) = server.queries
    assert search_path == SEARCH_PATH
    assert search == {"name": ["New York"], "count": ["1"], "language": ["en"], "format": ["json"]}
    assert forecast_path == FORECAST_PATH
    assert forecast == {
        "latitude": ["40.71427"],
        "longitude": ["-74.00597"],
        "current": ["temperature_2m,weather_code,wind_speed_10m"],
        "daily": ["temperature_2m_max,temperature_2m_min,precipitation_probability_max,weather_code"],
        "timezone": ["auto"],
        "forecast_days": ["3"],
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            {"city": "Paris", "day": "tomorrow"},
            "Paris, France — tomorrow (2026-05-02): 12.1–18.4 °C, 40% chance of rain, partly cloudy (Open-Meteo)",
        ),
        (
            {"city": "paris", "day": "day_after_tomorrow"},
            "Paris, France — the day after tomorrow (2026-05-03): 13–21 °C, 85% chance of rain, moderate rain "
            "(Open-Meteo)",
        ),
        (
            {"city": "New York"},
            "New York, United States — today (2026-05-01): -4–1 °C, 90% chance of rain, moderate snowfall; "
            "now -2.5 °C, slight snowfall, wind 24 km/h (Open-Meteo)",
        ),
    ],
)
def test_each_day_and_city(tool: Weather, args: dict[str, str], expected: str) -> None:
    assert tool.invoke(args) == expected


def test_unknown_city_is_named_and_never_invented(tool: Weather, server: WeatherServer) -> None:
    assert _error(tool, {"city": "Atlantis"}) == "I could not find a place called 'Atlantis'"
    assert server.requests == {SEARCH_PATH: 1}  # no forecast for a place that was not found
    _error(tool, {"city": "Atlantis"})
    assert server.requests == {SEARCH_PATH: 2}  # a miss is not cached


def test_bad_arguments_are_refused_before_any_request(tool: Weather, server: WeatherServer) -> None:
    for args in (
        {},
        {"city": ""},
        {"city": "   "},
        {"city": "x" * 101},
        {"city": "Paris\x00"},
        {"city": "Par\nis"},
        {"city": "Paris\u202e"},
        {"city": "Paris", "day": "yesterday"},
    ):
        with pytest.raises(ValidationError):
            tool.invoke(args)
    assert server.requests == {}
    assert WeatherArgs(city="  São Paulo ").city == "São Paulo"


# --- failures: retried, bounded, and never invented ------------------------------------------------


def test_two_503s_then_success_is_retried(tool: Weather, server: WeatherServer) -> None:
    server.fail_next(2)
    assert "9.5–17.8 °C" in tool.invoke({"city": "Paris"})
    assert server.requests == {SEARCH_PATH: 3, FORECAST_PATH: 1}


def test_a_503_on_the_forecast_is_retried_too(tool: Weather, server: WeatherServer) -> None:
    tool.client.place("Paris")  # geocode cached
    server.fail_next(1, status=502)
    assert "Paris, France" in tool.invoke({"city": "Paris"})
    assert server.requests == {SEARCH_PATH: 1, FORECAST_PATH: 2}


def test_always_503_is_unreachable_after_exactly_three_attempts(tool: Weather, server: WeatherServer) -> None:
    server.fail_next(10)
    assert _error(tool, {"city": "Paris"}) == UNREACHABLE
    assert MAX_ATTEMPTS == 3
    assert server.requests == {SEARCH_PATH: 3}


def test_a_4xx_is_not_retried(tool: Weather, server: WeatherServer) -> None:
    server.fail_next(1, status=429)
    assert _error(tool, {"city": "Paris"}) == UNREACHABLE
    assert server.requests == {SEARCH_PATH: 1}


def test_a_hanging_server_is_unreachable_within_a_bound(tool: Weather, server: WeatherServer) -> None:
    server.hang_next(MAX_ATTEMPTS, seconds=5.0)
    start = time.monotonic()
    assert _error(tool, {"city": "Paris"}) == UNREACHABLE
    elapsed = time.monotonic() - start
    assert MAX_ATTEMPTS * TIMEOUT_S <= elapsed < HANG_BOUND_S
    assert server.requests == {SEARCH_PATH: MAX_ATTEMPTS}


def test_one_hang_then_an_answer(tool: Weather, server: WeatherServer) -> None:
    server.hang_next(1, seconds=5.0)
    assert "Paris, France" in tool.invoke({"city": "Paris"})
    assert server.requests == {SEARCH_PATH: 2, FORECAST_PATH: 1}


def test_malformed_json_cannot_be_read_and_is_not_retried(tool: Weather, server: WeatherServer) -> None:
    server.malformed_next(1)
    assert _error(tool, {"city": "Paris"}) == UNREADABLE
    assert server.requests == {SEARCH_PATH: 1}
    assert "Paris, France" in tool.invoke({"city": "Paris"})  # nothing bad was cached


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"Paris"',
        b'{"results": {"name": "Paris"}}',
        b'{"results": ["Paris"]}',
        b'{"results": [{"name": "Paris", "latitude": "north", "longitude": 2.35}]}',
        b'{"results": [{"name": "Paris", "latitude": 48.85}]}',
        b'{"results": [{"name": "Paris", "latitude": 148.85, "longitude": 2.35}]}',
        b'{"results": [{"name": "Paris", "latitude": true, "longitude": 2.35}]}',
        b'{"results": [{"name": 7, "latitude": 48.85, "longitude": 2.35}]}',
        b'{"results": [{"name": "Paris\\u0007", "latitude": 48.85, "longitude": 2.35}]}',
        b"\xff\xfe not utf-8",
        b"",
        b"[" * 100_000,
    ],
)
def test_wrong_geocoding_shapes_cannot_be_read(tool: Weather, server: WeatherServer, body: bytes) -> None:
    server.malformed_next(1, body)
    assert _error(tool, {"city": "Paris"}) == UNREADABLE


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"daily": []}',
        b'{"daily": {"time": ["2026-05-01"], "temperature_2m_max": [1], "temperature_2m_min": [0],'
        b' "precipitation_probability_max": [0], "weather_code": [0]}}',
        b'{"daily": {"time": ["a", "b", "c"], "temperature_2m_max": ["hot", 1, 1], "temperature_2m_min": [0, 0, 0],'
        b' "precipitation_probability_max": [0, 0, 0], "weather_code": [0, 0, 0]}}',
        b'{"daily": {"time": ["a", "b", "c"], "temperature_2m_max": [1, 1, 1], "temperature_2m_min": [0, 0, 0],'
        b' "precipitation_probability_max": [150, 0, 0], "weather_code": [0, 0, 0]}}',
        b'{"daily": {"time": ["a", "b", "c"], "temperature_2m_max": [1, 1, 1], "temperature_2m_min": [0, 0, 0],'
        b' "precipitation_probability_max": [0, 0, 0], "weather_code": [0.5, 0, 0]}}',
        b'{"daily": {"time": ["a", "b", "c"], "temperature_2m_max": [null, 1, 1], "temperature_2m_min": [0, 0, 0],'
        b' "precipitation_probability_max": [0, 0, 0], "weather_code": [0, 0, 0]}}',
        b'{"daily": {"time": ["a", "b", "c"], "temperature_2m_max": [1, 1, 1], "temperature_2m_min": [5, 0, 0],'
        b' "precipitation_probability_max": [0, 0, 0], "weather_code": [0, 0, 0]}}',
        b'{"error": true, "reason": "Cannot initialize WeatherVariable"}',
    ],
)
def test_wrong_forecast_shapes_cannot_be_read(tool: Weather, server: WeatherServer, body: bytes) -> None:
    tool.client.place("Paris")
    server.malformed_next(1, body)
    assert _error(tool, {"city": "Paris"}) == UNREADABLE


def test_nulls_are_left_out_not_guessed(tool: Weather, server: WeatherServer) -> None:
    tool.client.place("Paris")
    server.malformed_next(
        1,
        b'{"daily": {"time": ["2026-05-01", "2026-05-02", "2026-05-03"], "temperature_2m_max": [10, 11, 12],'
        b' "temperature_2m_min": [1, 2, 3], "precipitation_probability_max": [null, 0, 0],'
        b' "weather_code": [null, 0, 0]}}',
    )
    assert tool.invoke({"city": "Paris"}) == "Paris, France — today (2026-05-01): 1–10 °C (Open-Meteo)"


def test_a_closed_port_is_unreachable(tmp_path: Path) -> None:
    tool = _tool(_settings(closed_port_url(), tmp_path))
    start = time.monotonic()
    assert _error(tool, {"city": "Paris"}) == UNREACHABLE
    assert time.monotonic() - start < HANG_BOUND_S
    tool.client.close()


def test_the_default_service_is_unreachable_from_a_test(tmp_path: Path) -> None:
    # pytest-socket allows only 127.0.0.1: the real Open-Meteo hosts cannot be reached here.
    (tool,) = make_tools(Settings(data_dir=tmp_path, cache_dir=tmp_path, weather_timeout_s=TIMEOUT_S))
    assert _error(tool, {"city": "Paris"}) == UNREACHABLE  # type: ignore[arg-type]


# --- the cache -------------------------------------------------------------------------------------


def test_the_same_question_twice_costs_one_request_each(tool: Weather, server: WeatherServer) -> None:
    first = tool.invoke({"city": "Paris"})
    assert tool.invoke({"city": "Paris"}) == first
    assert tool.invoke({"city": " PARIS "}) == first  # the key is the normalised name
    assert server.requests == {SEARCH_PATH: 1, FORECAST_PATH: 1}


def test_another_day_reuses_the_cached_place_and_forecast(tool: Weather, server: WeatherServer) -> None:
    # Designed so: places are cached by name, forecasts by coordinates, and one forecast holds all days.
    tool.invoke({"city": "Paris"})
    assert "tomorrow (2026-05-02)" in tool.invoke({"city": "Paris", "day": "tomorrow"})
    assert "(2026-05-03)" in tool.invoke({"city": "Paris", "day": "day_after_tomorrow"})
    assert server.requests == {SEARCH_PATH: 1, FORECAST_PATH: 1}
    tool.invoke({"city": "New York"})
    assert server.requests == {SEARCH_PATH: 2, FORECAST_PATH: 2}


def test_cached_entries_expire_after_the_ttl(server: WeatherServer) -> None:
    now = [0.0]
    client = OpenMeteoClient(
        geocoding_url=server.url + SEARCH_PATH,
        forecast_url=server.url + FORECAST_PATH,
        timeout_s=TIMEOUT_S,
        cache_ttl_s=600,
        timer=lambda: now[0],
    )
    tool = Weather(client=client)
    tool.invoke({"city": "Paris"})
    now[0] = 599.0
    tool.invoke({"city": "Paris"})
    assert server.requests == {SEARCH_PATH: 1, FORECAST_PATH: 1}
    now[0] = 601.0
    tool.invoke({"city": "Paris"})
    assert server.requests == {SEARCH_PATH: 2, FORECAST_PATH: 2}
    client.close()


def test_settings_choose_the_ttl(server: WeatherServer, tmp_path: Path) -> None:
    tool = _tool(_settings(server.url, tmp_path, weather_cache_ttl_s=0.0))
    tool.invoke({"city": "Paris"})
    tool.invoke({"city": "Paris"})
    assert server.requests == {SEARCH_PATH: 2, FORECAST_PATH: 2}  # ttl 0: nothing is kept
    tool.client.close()


def test_concurrent_questions_agree(tool: Weather, server: WeatherServer) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def ask(city: str) -> None:
        text = tool.invoke({"city": city})
        with lock:
            results.append(text)

    threads = [threading.Thread(target=ask, args=(city,)) for city in ["Paris", "New York"] * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 16
    assert len(set(results)) == 2
    requests = server.requests
    assert 2 <= requests[SEARCH_PATH] <= 16 and 2 <= requests[FORECAST_PATH] <= 16
    before = dict(requests)
    tool.invoke({"city": "Paris"})
    assert server.requests == before  # cached now


# --- finding the city and the day ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("weather in Paris", {"city": "Paris", "day": "today"}),
        ("What's the weather in Paris?", {"city": "Paris", "day": "today"}),
        ("forecast for New York tomorrow", {"city": "New York", "day": "tomorrow"}),
        ("is it raining in São Paulo?", {"city": "São Paulo", "day": "today"}),
        ("temperature at Berlin", {"city": "Berlin", "day": "today"}),
        ("What's the weather going to be in Paris tomorrow?", {"city": "Paris", "day": "tomorrow"}),
        ("Weather in Rio de Janeiro the day after tomorrow", {"city": "Rio de Janeiro", "day": "day_after_tomorrow"}),
        ("Will it rain this weekend in Seattle, zip 98101?", {"city": "Seattle", "day": "today"}),
        ("weather in Paris and London", {"city": "Paris", "day": "today"}),
        ("weather for the weekend in Frankfurt am Main", {"city": "Frankfurt am Main", "day": "today"}),
        ("forecast at 5pm in St. Louis", {"city": "St. Louis", "day": "today"}),
        ("Weather in Paris on Monday", {"city": "Paris", "day": "today"}),
        ("what's the weather in new york tomorrow", {"city": "new york", "day": "tomorrow"}),
        ("What's the weather like?", {}),
        ("What's the weather like in my area?", {}),
        ("weather in paris, please", {"city": "paris", "day": "today"}),
        ("Do you have rain boots in stock?", {}),
    ],
)
def test_extract(tool: Weather, text: str, args: dict[str, str]) -> None:
    assert tool.extract(_turn(text)) == args


def test_serves_weather_turns_and_not_order_turns(tool: Weather) -> None:
    assert tool.serves(_turn("What's the weather in Paris tomorrow?"))
    assert tool.serves(_turn("What's the weather like?"))  # served: the graph asks for the city
    assert tool.serves(_turn("Is it raining in São Paulo?"))
    assert not tool.serves(_turn("Where is my order #W2611340?", intent="order_status"))
    assert not tool.serves(_turn("Do you have patio umbrellas bigger than 9 feet?", intent="product_info"))
    assert not tool.serves(_turn("What temperature should I wash this shirt at?", intent="product_info"))


def test_the_router_asks_for_a_missing_city(tool: Weather) -> None:
    chosen = choose_tool([tool], _turn("What's the weather like?"))
    assert chosen is not None
    chosen_tool, args, missing = chosen
    assert chosen_tool is tool and args == {} and missing == ["city"]
    assert tool.ask_for(missing) == "Which city would you like the weather for?"
    ready = choose_tool([tool], _turn("forecast for New York tomorrow"))
    assert ready is not None and ready[1] == {"city": "New York", "day": "tomorrow"} and not ready[2]


def test_an_extracted_turn_answers_end_to_end(tool: Weather) -> None:
    args, missing = tool.arguments(_turn("Is it going to rain in Paris tomorrow?"))
    assert not missing
    assert "40% chance of rain" in tool.invoke(args)


def test_odd_text_never_breaks_extraction(tool: Weather) -> None:
    for text in ("", "in", "in ", "weather in " + "A" * 5000, "in " * 5000, "\x00 in \x1b[31m Paris", "🚀 in 🚀"):
        found = tool.extract(_turn(text))
        assert set(found) <= {"city", "day"}
        tool.serves(_turn(text))
    long_city = tool.extract(_turn("weather in " + "A" * 5000))
    assert long_city == {}  # longer than any city name


# --- conformance -----------------------------------------------------------------------------------


def test_the_tool_conforms(tool: Weather) -> None:
    assert tool_problems(tool) == []


def test_the_entry_point_conforms(server: WeatherServer, tmp_path: Path) -> None:
    check_plugin("weather", samples=[({"city": "Paris"}, "9.5–17.8 °C")], settings=_settings(server.url, tmp_path))
