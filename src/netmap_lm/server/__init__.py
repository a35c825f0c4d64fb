"""The asyncio edge around the pure core: TCP and UDP on port 1493."""
