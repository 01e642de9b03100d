//! `GET /health`: answers `{"status":"OK"}`, touches nothing, needs nothing (no AWS client
//! is built for its function, so its init is the runtime's alone).

pub mod get;
