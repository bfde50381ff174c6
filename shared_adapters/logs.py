"""Log lines for every process: one JSON object per line (or a human format), with the message and trace ids.

A line about a message carries `messageId` and `traceId` as fields (`extra=`); a line written
while a request is handled carries that request's `traceId` by itself. Message text and tokens
are never logged.
"""

import contextvars
import functools
import json
import logging
import os
import sys
import threading
import weakref
from datetime import datetime, timezone

from gunicorn import glogging

from shared_domain.clock import to_iso

current_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)
# Attributes every LogRecord has; anything else on a record was given as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def fields_of(record: logging.LogRecord) -> dict:
    """The fields a line was given, and the trace id of the request it was written in."""
    fields = {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}
    trace_id = current_trace_id.get()
    if trace_id is not None:
        fields.setdefault("traceId", trace_id)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    """The record's time as the API writes times (clock.to_iso): ISO 8601 UTC with milliseconds."""
    second = int(record.created)
    micros = round((record.created - second) * 1e6)  # rounded as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_iso_second(second)}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=1)  # every line of a second shares it
def _iso_second(second: int) -> str:
    """A whole second as to_iso writes it, without the milliseconds."""
    return to_iso(datetime.fromtimestamp(second, timezone.utc))[:-len(".000Z")]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process id, message, then the line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = {"time": _timestamp(record), "level": record.levelname, "logger": record.name, "pid": record.process,
                 "message": record.getMessage(), **fields_of(record)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODE(entry)


class TextFormatter(logging.Formatter):
    """A line for people: time, level, logger, message, then `name=value` for each field."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one human-readable line."""
        fields = " ".join(f"{key}={value}" for key, value in fields_of(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}" + (f" {fields}" if fields else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def skip_unused_record_work() -> None:
    """Lines never show their source line or thread, so logging need not look them up (a line per message adds up).

    The logging manual's own advice for speed: `_srcfile = None` skips walking the stack for the caller.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def configure_logging(level: int | str, log_format: str) -> None:
    """Send every logger's lines to stderr in the chosen format."""
    skip_unused_record_work()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class BatchedLines(logging.StreamHandler):
    """Writes its lines to the stream together, at most `interval_s` after the first of them; a WARNING or worse at once.

    A server writes a line per request: writing each on its own costs a system call, and the
    interpreter lock handed to another thread and back, per request. Lines still waiting when the
    process is killed (SIGKILL) are lost; logging's exit handler writes them on any other exit.
    """

    def __init__(self, stream=None, interval_s: float = 0.1, max_lines: int = 256):
        super().__init__(stream)
        self.interval_s, self.max_lines = interval_s, max_lines
        self._lines: list[str] = []
        self._flusher: threading.Thread | None = None  # this process's, started with its first line
        self._stopped = threading.Event()
        handler = weakref.ref(self)
        # A child starts with none of the parent's lines (the parent writes them) and no flusher thread.
        os.register_at_fork(after_in_child=lambda: (alive := handler()) and alive._forked())

    def _forked(self) -> None:
        """In a new child: nothing kept, no flusher yet."""
        self._lines, self._flusher = [], None

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the line for the next write (the caller holds the handler's lock)."""
        try:
            self._lines.append(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or len(self._lines) >= self.max_lines:
                self._write()
            elif self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_every_interval, name="log-lines", daemon=True)
                self._flusher.start()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write the lines kept so far."""
        with self.lock:
            self._write()

    def close(self) -> None:
        """Write what is kept and stop the flusher."""
        self._stopped.set()
        self.flush()
        super().close()

    def _write(self) -> None:
        """Write the kept lines in one call (the caller holds the lock)."""
        if self._lines:
            lines, self._lines = "".join(self._lines), []
            self.stream.write(lines)
        super().flush()

    def _flush_every_interval(self) -> None:
        """The flusher thread: write what is kept every interval until closed."""
        while not self._stopped.wait(self.interval_s):
            self.flush()


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, writing access lines only when an access log is asked for (`accesslog`).

    Given a `logconfig_dict`, gunicorn would build and write an access line for every request.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self._access_asked = bool(cfg.accesslog)

    def access(self, resp, req, environ, request_time) -> None:
        if self._access_asked:
            super().access(resp, req, environ, request_time)


def gunicorn_log_config(level: str, log_format: str) -> dict:
    """gunicorn's `logconfig_dict`: its own loggers (errors and, with GunicornLogger when asked, access) in one format."""
    skip_unused_record_work()
    formatter = f"{__name__}.{FORMATTERS[log_format].__name__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": formatter}},
        # A line per request: written in batches.
        "handlers": {"stderr": {"class": f"{__name__}.{BatchedLines.__name__}", "formatter": "line",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        },
    }
