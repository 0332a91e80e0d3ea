"""api: the HTTP service, the CLI and the settings of cptqa."""

from api.http import create_app
from api.service import Service, check_query
from api.settings import Settings

__all__ = ["Service", "Settings", "check_query", "create_app"]
