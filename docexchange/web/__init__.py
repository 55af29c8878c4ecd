"""HTTP fronts of an axis node: the agency JSON API, the node-to-node peer API, (later) the national-axis-style
API and the web pages, all over one aiohttp application per node (:func:`docexchange.web.app.create_app`)."""

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from docexchange.web.app import create_app

        return create_app
    raise AttributeError(name)
