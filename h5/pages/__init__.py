"""H5 page handlers, one module per area; each exposes `router` (built with `page_router()`)."""
