"""The functional core: pure functions of pydantic models. No kopf, kubernetes or httpx here."""
