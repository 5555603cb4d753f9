//! The relay's pull API as the app sees it (`GET /v1/events`, `POST /v1/ack`).
