"""Reading Dynamics 365 F&O over OData: authentication, throttling, paging, decoding and extraction."""
