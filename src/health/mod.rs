//! `GET /health`: answers `{"status":"OK"}` and touches nothing: no AWS client is built for
//! its function (it reads only its log level from AppConfig at start-up, as FireFly's).

pub mod get;
