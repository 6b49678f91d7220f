"""The Yahoo download: yfinance.download in batches, retried with bounded exponential
backoff and jitter.

yfinance catches errors per ticker and logs them; we read those log records to tell a
rate limit, a timeout or a 5xx (transient: retried) from a ticker Yahoo does not know
(permanent: reported and left out).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.data.schema import describe_list
from marketpredictor_train.data.yahoo_convert import frames_from_download
from marketpredictor_train.progress import ProgressCallback, report

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)

# First retry waits about BASE_DELAY_S, doubling each time up to MAX_DELAY_S; tests set
# the base to 0. Rate limits at Yahoo last from seconds to minutes.
BASE_DELAY_S = 2.0
MAX_DELAY_S = 60.0
# One HTTP request; the whole download is bounded by settings.download_timeout_s.
REQUEST_TIMEOUT_S = 30.0

# Patched by tests: waiting and the clock of the retry loop.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


_TRANSIENT = re.compile(
    r"YFRateLimitError|Too Many Requests|Rate ?limit|time[d ]?\s?out|Timeout|CURRENTLY DOWN"
    r"|ConnectionError|Connection (?:reset|refused|aborted)|Server Error|Bad Gateway"
    r"|Service Unavailable|Gateway Time|status_code = 5\d\d|HTTP Error 5\d\d|\b50[0234]\b",
    re.IGNORECASE,
)
# The machine has no way to Yahoo at all (offline, DNS down, no route): every ticker of
# the request fails for that one reason, also those yfinance calls "possibly delisted; no
# timezone found" because its time-zone lookup, the first request, failed the same way.
_NETWORK = re.compile(
    r"Could not resolve (?:host|proxy)(?::\s*[\w.-]+)?|Name or service not known"
    r"|Temporary failure in name resolution|Network is unreachable|No route to host"
    r"|getaddrinfo failed"
    r"|nodename nor servname provided|Failed to establish a new connection",
    re.IGNORECASE,
)
NETWORK_REASON = "the network is unreachable"
_RATE_LIMITED = re.compile(r"YFRateLimitError|Too Many Requests|Rate ?limit", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Bounded exponential backoff with jitter: at most ``retries`` retries per batch,
    and never past ``budget_s`` seconds for the whole download."""

    retries: int
    budget_s: float
    base_delay_s: float = BASE_DELAY_S
    max_delay_s: float = MAX_DELAY_S

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait before retry number ``attempt`` (0-based): between half and all of
        base * 2**attempt, capped, so parallel clients do not retry in step."""
        cap = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return rng.uniform(cap / 2, cap)

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(
            retries=settings.download_retries,
            budget_s=settings.download_timeout_s,
            base_delay_s=BASE_DELAY_S,
            max_delay_s=MAX_DELAY_S,
        )


@dataclass
class Downloaded:
    """What one download of many tickers produced."""

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    retries: int = 0


@dataclass
class _Attempt:
    frames: dict[str, pl.DataFrame]
    transient: dict[str, str]
    permanent: dict[str, str]


def download_daily(
    tickers: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    backoff: Backoff,
    batch_size: int,
    progress: ProgressCallback | None = None,
    rng: random.Random | None = None,
) -> Downloaded:
    """Daily adjusted bars of ``tickers`` for [start, end) in batches, with retries."""
    rng = rng or random.Random()
    result = Downloaded()
    deadline = clock() + backoff.budget_s
    total, done = len(tickers), 0
    for i in range(0, total, batch_size):
        batch = list(tickers[i : i + batch_size])
        if clock() >= deadline:
            for t in batch:
                result.failed[t] = (
                    f"not downloaded: the {backoff.budget_s:g} s download budget ran out"
                )
            continue
        got = _download_with_retries(batch, start, end, backoff, deadline, rng)
        result.frames.update(got.frames)
        result.failed.update(got.failed)
        result.retries += got.retries
        done += len(batch)
        report(progress, "download", done, total, batch[-1])
    return result


def _download_with_retries(
    batch: list[str],
    start: dt.date,
    end: dt.date,
    backoff: Backoff,
    deadline: float,
    rng: random.Random,
) -> Downloaded:
    result = Downloaded()
    pending = batch
    attempt = 0
    while pending:
        timeout = max(1.0, min(REQUEST_TIMEOUT_S, deadline - clock()))
        outcome = _download_once(pending, start, end, timeout)
        result.frames.update(outcome.frames)
        result.failed.update(outcome.permanent)
        if not outcome.transient:
            break
        pending = list(outcome.transient)
        reason = _summary(outcome.transient)
        if attempt >= backoff.retries:
            for t, why in outcome.transient.items():
                result.failed[t] = f"download failed after {attempt + 1} attempts: {why}"
            break
        wait = backoff.delay(attempt, rng)
        if clock() + wait > deadline:
            for t, why in outcome.transient.items():
                result.failed[t] = (
                    f"download failed: {why} (the {backoff.budget_s:g} s download budget ran out)"
                )
            break
        log.warning(
            "Yahoo download failed, retrying",
            tickers=describe_list(pending),
            reason=reason,
            attempt=attempt + 1,
            wait_s=round(wait, 2),
        )
        sleep(wait)
        attempt += 1
        result.retries += 1
    return result


def _download_once(tickers: list[str], start: dt.date, end: dt.date, timeout: float) -> _Attempt:
    """One yfinance.download call; per-ticker frames and why the others came back empty."""
    import yfinance as yf

    capture = _YFinanceErrors()
    yf_log = logging.getLogger("yfinance")
    propagate = yf_log.propagate
    yf_log.addHandler(capture)
    # yfinance logs each failure at ERROR; we report them ourselves, with the reason.
    yf_log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = yf.download(
                tickers,
                start=start.isoformat(),
                end=end.isoformat(),
                interval="1d",
                auto_adjust=True,
                actions=False,
                group_by="column",
                multi_level_index=True,
                ignore_tz=True,
                keepna=False,
                progress=False,
                threads=min(len(tickers), 8),
                timeout=timeout,
            )
    except Exception as exc:
        why = network_cause(str(exc)) or f"{type(exc).__name__}: {exc}"
        bucket = dict.fromkeys(tickers, why)
        if is_transient(exc):
            return _Attempt({}, bucket, {})
        return _Attempt({}, {}, bucket)
    finally:
        yf_log.removeHandler(capture)
        yf_log.propagate = propagate

    frames = frames_from_download(raw, tickers)
    transient: dict[str, str] = {}
    permanent: dict[str, str] = {}
    empty = [t for t in tickers if t not in frames]
    offline = capture.network or next(
        (c for c in map(network_cause, capture.errors.values()) if c is not None), None
    )
    if offline is not None:
        # One cause, not "possibly delisted" for some tickers and a DNS error for others.
        return _Attempt(frames, {}, dict.fromkeys(empty, offline))
    for t in empty:
        reason = capture.errors.get(t)
        if reason is not None and _TRANSIENT.search(reason):
            transient[t] = _friendly(reason)
        elif reason is not None:
            permanent[t] = f"no data from Yahoo: {_friendly(reason)}"
        elif len(empty) == len(tickers):
            # Nothing at all and no reason given: an outage or a block, not n bad symbols.
            transient[t] = "Yahoo returned no data at all"
        else:
            permanent[t] = "no data from Yahoo (no rows in the requested window)"
    return _Attempt(frames, transient, permanent)


def network_cause(error: str) -> str | None:
    """'the network is unreachable (Could not resolve host: query2.finance.yahoo.com)'
    when ``error`` says the machine cannot reach Yahoo at all; None otherwise."""
    match = _NETWORK.search(error)
    if match is None:
        return None
    return f"{NETWORK_REASON} ({match.group(0).strip().rstrip('.')})"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits, timeouts, dropped connections and 5xx answers."""
    from yfinance.exceptions import YFRateLimitError

    if isinstance(exc, YFRateLimitError | TimeoutError | ConnectionError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "ConnectionError",
        "ChunkedEncodingError",
    }:
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    return bool(_TRANSIENT.search(str(exc)))


class _YFinanceErrors(logging.Handler):
    """Collects yfinance's per-ticker error lines: "['AAPL', 'MSFT']: YFRateLimitError(...)"."""

    _LINE = re.compile(r"^\[(?P<tickers>[^\]]*)\]:\s*(?P<error>.+)$", re.DOTALL)

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.errors: dict[str, str] = {}
        # Set when any line (e.g. "Failed to get ticker 'X' reason: ...") says Yahoo
        # cannot be reached at all.
        self.network: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip()
        except Exception:
            return
        self.network = self.network or network_cause(text)
        match = self._LINE.match(text)
        if match is None:
            return
        for ticker in re.findall(r"'([^']+)'", match["tickers"]):
            self.errors[ticker.upper()] = match["error"].strip()


def _friendly(error: str) -> str:
    """ "YFPricesMissingError('possibly delisted; ...')" -> "possibly delisted; ..."."""
    match = re.match(r"^\w+\((['\"])(?P<text>.*)\1\)$", error.strip(), re.DOTALL)
    text = match["text"] if match else error
    if _RATE_LIMITED.search(text):
        text = f"rate limited by Yahoo ({text})"
    return text


def _summary(reasons: dict[str, str]) -> str:
    return describe_list(sorted(set(reasons.values())), limit=3)
