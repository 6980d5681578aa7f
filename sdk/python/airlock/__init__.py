"""Airlock: run untrusted, model-generated code in sealed sandboxes on your own host.

    from airlock import Sandbox
    with Sandbox(egress=False) as sb:
        sb.upload(b"name,age\\nAlice,30\\n", "/data/roster.csv")
        print(sb.run_code("print(open('/data/roster.csv').read())").stdout)

Configuration: ``AIRLOCK_URL`` (default ``http://127.0.0.1:7070``, or
``unix:///path/to.sock``) and ``AIRLOCK_API_KEY``.
"""

from .errors import (AirlockConnectionError, AirlockError, AuditUnavailable, AuthError, EgressUnavailable,
                     IsolationUnavailable,
                     IntegrityError, InvalidRequest, NotFound, PathEscape, PathForbidden,
                     PayloadTooLarge, QuotaExceeded, RateLimitError, RegionUnavailable, ReplRestarted,
                     SandboxBusy, SandboxPaused, SandboxTimeout, ServerError, TemplateCorrupt, TemplateNotFound,
                     TransferError, WheelInstallError)
from .models import CodeContext, Execution, ExecutionError, Info, Result
from ._transport import close_idle_connections
from .process import CommandHandle, ExecutionStream, Processes
from .sandbox import Files, Sandbox, WatchHandle
from .aio import AsyncCommandHandle, AsyncSandbox
from . import tools
from .tools import anthropic_tools, dispatch, openai_tools

__version__ = "0.1.0"

__all__ = [
    "Sandbox", "Files", "CommandHandle", "ExecutionStream", "Processes",
    "AsyncSandbox", "AsyncCommandHandle", "WatchHandle", "CodeContext", "Execution", "ExecutionError", "Result", "Info",
    "AirlockError", "AirlockConnectionError", "TransferError", "IntegrityError", "AuthError", "NotFound", "SandboxTimeout",
    "QuotaExceeded", "RateLimitError", "InvalidRequest", "PayloadTooLarge", "PathEscape", "PathForbidden", "RegionUnavailable",
    "EgressUnavailable", "IsolationUnavailable", "TemplateNotFound", "TemplateCorrupt", "WheelInstallError", "ServerError",
    "AuditUnavailable", "ReplRestarted", "SandboxPaused", "SandboxBusy",
    "close_idle_connections",
    "tools", "openai_tools", "anthropic_tools", "dispatch",
]
