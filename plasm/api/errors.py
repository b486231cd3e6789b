"""API errors: each carries its HTTP status, a stable code and a message for people."""

from __future__ import annotations

from typing import Any

from plasm.errors import PlasmError


class ApiError(PlasmError):
    """A request that cannot be served; becomes `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class ApiSetupError(PlasmError):
    """The API could not listen where it was told to (socket in use, bad path)."""
