"""``APOLLO_LOG_FORMAT=json``: one JSON object per line.

Fields: time (UTC, ISO 8601), level, logger, message, request_id, user, deployment_id, and
exception when the record carries a traceback. The message is already scrubbed of credentials
by the record factory of apollo_site.redaction (installed for every record of the process).
"""

import json
import logging
from datetime import UTC, datetime

from apollo_site.ops import context


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or context.request_id.get(),
            "user": context.current_user_name(),
        }
        deployment = getattr(record, "deployment_id", None) or context.deployment_id.get()
        if deployment is not None:
            line["deployment_id"] = deployment
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)
