"""The edge: the server and its workers, the protocol handler with the hit and relay fast paths,
and the middleware chain that renders every failure. The only package that touches aiohttp's
internals."""
