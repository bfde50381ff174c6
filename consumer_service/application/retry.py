"""Retry policy for transient store errors: exponential backoff with jitter."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from .errors import StoreUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient store error."""

    attempts: int = 3
    first_wait: float = 1.0
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, operation: Callable[[], T]) -> tuple[T, int]:
        """Run `operation`, retrying StoreUnavailable; return its result and the attempts used.

        Raises RetriesExhausted carrying the last error and the attempt count.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=self.first_wait, max=self.max_wait, jitter=self.first_wait),
            retry=retry_if_exception_type(StoreUnavailable),
            sleep=self.sleep,
        )
        try:
            result = retrying(operation)
        except RetryError as error:
            last = error.last_attempt
            raise RetriesExhausted(last.exception(), last.attempt_number) from None
        return result, retrying.statistics["attempt_number"]


class RetriesExhausted(Exception):
    """Every attempt met a transient error."""

    def __init__(self, last_error: BaseException | None, attempts: int):
        super().__init__(f"{last_error} (after {attempts} attempts)")
        self.last_error = last_error
        self.attempts = attempts
