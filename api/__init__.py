"""The HTTP surface served by each worker (faust's aiohttp server): routes, auth, errors."""
