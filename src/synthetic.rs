//! Synthetic routes for measuring what a route costs (`benches/routes.rs`,
//! `benches/dispatch.rs`): 50 routes of 50 made-up functions, each with its own handler
//! type, as a growing API would have. Never in the route table; `bootstrap` links them only
//! when built with the `synthetic-routes` feature, which only the bench does.

use crate::error::StartupError;
use crate::identity::Caller;
use crate::init::Init;
use crate::response::Response;
use crate::route::{BoxFuture, Build, HandlerResult, JwtHandler, Request, Route};
use crate::routes::ROUTES;
use lambda_http::http::StatusCode;

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
                build: Build::Jwt({
                    struct H;
                    impl JwtHandler for H {
                        fn call<'a>(&'a self, req: Request<'a>, caller: Caller) -> BoxFuture<'a, HandlerResult> {
                            Box::pin(async move {
                                let id = req.param("id").unwrap_or_default().to_owned();
                                Ok(Response::json(
                                    StatusCode::OK,
                                    &[("route", $n.to_string()), ("id", id), ("user", caller.user_id)],
                                ))
                            })
                        }
                    }
                    fn build(_: &mut Init<'_>) -> Result<Box<dyn JwtHandler>, StartupError> {
                        Ok(Box::new(H))
                    }
                    build
                }),
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
