"""The engine both faces share: SSE decoding, the protocol cores, typed decoding,
accumulation, deadlines, retries and resume, under thin sync and async stream shells.
Nothing here is public API: ``deltastream`` (the drop-in) and ``deltastream.native``
re-export what users need."""
