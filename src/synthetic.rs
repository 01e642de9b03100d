//! Synthetic routes for measuring what a route costs (`benches/routes.rs`,
//! `benches/dispatch.rs`): 50 routes of 50 made-up functions, each with its own handler
//! type, as a growing API would have. Never in the route table; `bootstrap` links them only
//! when built with the `synthetic-routes` feature, which only the bench does.

use crate::error::ApiError;
use crate::handler::{HandlerResult, Path, PathParam};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::Route;
use crate::routes::ROUTES;
use lambda_http::http::StatusCode;

/// The `{id}` of every synthetic route.
pub struct Id(String);

impl PathParam for Id {
    const NAME: &'static str = "id";
    fn parse(text: &str) -> Result<Self, ApiError> {
        Ok(Self(text.to_owned()))
    }
}

/// How many synthetic routes there are.
pub const COUNT: usize = 50;

macro_rules! synthetic {
    ($($n:literal),* $(,)?) => {
        /// The synthetic routes alone.
        pub static SYNTHETIC: [Route; COUNT] = [$(
            Route {
                key: concat!("GET /synthetic/r", $n, "/{id}"),
                function: concat!("firefly-func-api-synthetic-", $n),
                summary: "a synthetic route (benches only)",
                uses: &[],
                answers: &[],
                scopes: &[],
                params: &[],
                headers: &[],
                alarms: &[],
                reserved_concurrency: None,
                timeout_s: None,
                request: None,
                endpoint: {
                    async fn h(_: (), caller: Caller, Path(Id(id)): Path<Id>) -> HandlerResult {
                        Ok(Response::json(
                            StatusCode::OK,
                            &[("route", $n.to_string()), ("id", id), ("user", caller.user_id)],
                        ))
                    }
                    crate::endpoint!(h)
                },
            },
        )*];
    };
}

synthetic!(
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50
);

/// The real table followed by the synthetic routes, built once and kept for the process.
pub fn table() -> &'static [Route] {
    let mut all: Vec<Route> = ROUTES.to_vec();
    all.extend(SYNTHETIC);
    Box::leak(all.into_boxed_slice())
}
