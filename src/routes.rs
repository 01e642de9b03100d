//! The route table: every route of every Firefly function, in one list.
//!
//! Adding a route is one handler file (a `Route` constant and its handler) and one line
//! here; `cargo run --features tools --bin firefly-gen` then writes everything that repeats its facts
//! (README, "Adding a route").

use crate::route::Route;
use crate::{backups, devices, firmware, health, log_levels, registration_keys, users};

pub static ROUTES: &[Route] = &[
    registration_keys::post::ROUTE,
    registration_keys::get::ROUTE,
    registration_keys::delete::ROUTE,
    health::get::ROUTE,
    devices::register::ROUTE,
    devices::registration::ROUTE,
    devices::get::ROUTE,
    backups::post::ROUTE,
    backups::get::ROUTE,
    backups::delete::ROUTE,
    firmware::get::LIST,
    firmware::get::ITEM,
    firmware::status::ROUTE,
    firmware::delete::ROUTE,
    firmware::download::ROUTE,
    firmware::ota::ROUTE,
    firmware::UPLOADED,
    firmware::DELETED,
    users::presignup::ROUTE,
    users::get::ROUTE,
    users::post::ROUTE,
    users::patch::ROUTE,
    users::delete::ROUTE,
    log_levels::get::ROUTE,
    log_levels::patch::ROUTE,
    log_levels::deploy::ROUTE,
    log_levels::delete::ROUTE,
];
