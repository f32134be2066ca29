"""A small game service to deploy in the local environment: one process per color.

Players are WebSocket sessions, each on the client version it connected with; the service
counts them per version and tells them to reconnect once their game is done, which is what the
deployment's drain phase talks to. A plain HTTP API (``GET /version``) is what load generators
and health checks hit. Run ``python -m sample_service --help``.

Endpoints (``X-Game-Version`` defaults to the server's own version where one is needed)::

    GET  /health        200 "ok color=blue version=1"         (503 for a -unhealthy version)
    GET  /version       200 {"color": "blue", "version": "1"}  (some 500s for -errorsN)
    GET  /connections   200 {"connections": N}  open sessions on X-Game-Version (all without it)
    POST /reconnect     202 {"notified": N}     sessions on X-Game-Version told to reconnect
    GET  /play          WebSocket upgrade: a player session on X-Game-Version

Anything else is 404 (405 for a known path with another method), with a JSON error body.

A session speaks JSON text frames:

- server → player, on open: ``{"type": "welcome", "color": "blue", "version": "1",
  "session": "s1"}``
- player → server: ``{"type": "move", "game": n}``; server → player: ``{"type": "ack",
  "game": n}``
- server → player: ``{"type": "reconnect"}``, the notice (sent once per session, after
  ``POST /reconnect`` for its version): the player finishes its current game, closes cleanly
  (code 1000) and reconnects
- server → player: ``{"type": "error", "error": "..."}`` for a frame it does not understand

Stopping the server (SIGTERM, SIGINT) closes every open session with code 1001 (going away).
"""
