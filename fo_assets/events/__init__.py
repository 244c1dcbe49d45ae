"""F&O Business Events: the payloads (``payload``), the HTTPS receiver and its parsers (``receiver``,
``parsers``), the Azure Service Bus drain (``servicebus``) and the durable inbox they all write to
(``inbox``). The sensor that turns events into targeted refreshes is Dagster code (``fo_assets.sensors``)."""
